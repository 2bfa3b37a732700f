"""The guard of every module that leans on another library's private internals for speed
(``iot_gateway.paho_fast``, ``meters.channel_groups``, ``gridcoin.lean_path``).

Each such module names the release series it was written against and calls ``require_version``
when it is imported: an upgraded library stops the process at start-up with a message saying
what to check, instead of a fast path that quietly misbehaves. The module's test then shows
whether the internals are still there with the shapes it expects.
"""

from __future__ import annotations


class UnsupportedLibraryVersion(ImportError):
    """An installed library is of a release its private-API module was not written for."""


def release_series(version: str) -> str:
    """``"2.1"`` of ``"2.1.0"``, ``"2.1.0rc1"`` or ``"2.1"``."""
    major, _, rest = version.partition(".")
    minor = ""
    for char in rest:
        if not char.isdigit():
            break
        minor += char
    return f"{major}.{minor}" if minor else major


def require_version(library: str, installed: str, supported: tuple[str, ...], *, module: str, relies_on: str,
                    test: str) -> None:
    """Raise ``UnsupportedLibraryVersion`` unless ``installed`` is of one of the ``supported``
    release series (``"2.1"`` covers 2.1.0, 2.1.1, ...)."""
    if release_series(installed) in supported:
        return
    written_for = ", ".join(f"{series}.x" for series in supported)
    raise UnsupportedLibraryVersion(
        f"{module} relies on private internals of {library} ({relies_on}) and was written for {library} "
        f"{written_for}, but {library} {installed} is installed. Read those internals in the new release, run "
        f"{test}, and add {release_series(installed)!r} to {module}'s supported versions once it passes; "
        f"or install {library} {written_for}.")
