"""QR codes for device stickers: each encodes the absolute URL of the device page
``/d/<public_id>``, so any phone camera opens it. Pure: segno only, no ORM."""

from __future__ import annotations

import io

import segno

# Medium error correction survives a scuffed outdoor sticker; a border of four modules is
# the quiet zone the standard asks for.
ERROR = "m"
BORDER = 4


def device_url(base_url: str, public_id: str) -> str:
    """``https://host`` + ``/d/<public_id>`` (the base may end with a slash)."""
    return f"{base_url.rstrip('/')}/d/{public_id}"


def device_qr(url: str) -> segno.QRCode:
    return segno.make(url, error=ERROR, micro=False, boost_error=False)


def qr_png(url: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    device_qr(url).save(out, kind="png", scale=scale, border=BORDER)
    return out.getvalue()


def qr_svg(url: str, *, scale: int = 8, title: str | None = None) -> bytes:
    out = io.BytesIO()
    device_qr(url).save(out, kind="svg", scale=scale, border=BORDER, title=title, xmldecl=True)
    return out.getvalue()


def qr_svg_inline(url: str, *, title: str | None = None) -> str:
    """An ``<svg>`` element to embed in HTML (sticker sheets); scales with CSS."""
    return device_qr(url).svg_inline(scale=1, border=BORDER, title=title, omitsize=True)
