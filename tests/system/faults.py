"""Throw-away servers for the fault tests: a Redis and a PostgreSQL cluster of their own, on
ports of their own, that a test may stop and start at will (the shared services never are).

A missing server binary skips the test with the reason, or fails it under
GRIDCOIN_REQUIRE_SERVICES=1 (CI), as a missing service does (tests/conftest.py).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("GRIDCOIN_REQUIRE_SERVICES") == "1"

# Ports are searched upwards from here; a machine shared with other test runs sets its own.
PORT_BASE = int(os.environ.get("GRIDCOIN_FAULT_PORT_BASE", "18400"))


def require(binary: str | None, what: str) -> str:
    """The binary's path; skip (or fail under GRIDCOIN_REQUIRE_SERVICES=1) without it."""
    if binary:
        return binary
    if REQUIRE_SERVICES:
        pytest.fail(f"GRIDCOIN_REQUIRE_SERVICES=1 but {what} is not installed")
    pytest.skip(f"{what} is not installed")


def free_port(start: int = PORT_BASE) -> int:
    """The first port from ``start`` (within a hundred) that nothing listens on or holds."""
    for port in range(start, start + 100):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {start}..{start + 99}")


def port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, timeout: float, what: str, *, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """The response's status code; OSError when nothing answered."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


class RedisServer:
    """``redis-server`` on its own port, no persistence: a restart forgets everything, as a
    Redis that lost its memory would."""

    def __init__(self, port: int):
        self.binary = require(shutil.which("redis-server"), "redis-server")
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_answers(self.port), 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def postgres_binaries() -> Path | None:
    """Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<version>/bin
    (the newest wins); elsewhere they sit on PATH, next to createdb."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


class PostgresCluster:
    """A cluster of its own in a temporary directory. initdb refuses to run as root, so as
    root the cluster belongs to the ``postgres`` user (Debian's package creates it)."""

    def __init__(self, directory: Path, port: int):
        located = postgres_binaries()
        self.bin = Path(require(str(located) if located else None, "PostgreSQL (initdb)"))
        self.directory = directory
        self.data = directory / "data"
        self.sockets = directory / "sockets"
        self.log = directory / "postgres.log"
        self.port = port
        self.user = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = 60) -> None:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(argv, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr}")

    def create(self) -> None:
        self.sockets.mkdir(parents=True)
        self.log.touch()
        if self.user:
            shutil.chown(self.directory, self.user)
            shutil.chown(self.sockets, self.user)
            shutil.chown(self.log, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    def _options(self) -> str:
        # fsync off: nothing here must survive a machine crash, only a server restart
        return f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-w", "start")

    def restart(self) -> None:
        """A fast restart: every session is cut, open transactions roll back."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-m", "fast",
                  "-w", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def create_database(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
