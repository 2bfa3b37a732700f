"""Draw the PWA icons (the lightning bolt on the theme green) into frontend/static/frontend/icons/.

Pure Python (zlib PNG writer, anti-aliased polygon fill), so it runs with nothing installed:
``python tools/make_pwa_icons.py``. Run it again after changing the brand colours or shapes;
the output is deterministic, so unchanged shapes leave the files byte-identical.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "frontend" / "static" / "frontend" / "icons"
GREEN = (0x14, 0x53, 0x2D)
YELLOW = (0xFA, 0xCC, 0x15)
WHITE = (0xFF, 0xFF, 0xFF)
SUBROWS = 4  # vertical samples per pixel; horizontal coverage is exact

# The bolt on a 24-unit grid (the shape of Feather's "zap").
BOLT = [(13, 2), (3, 14), (12, 14), (11, 22), (21, 10), (12, 10), (13, 2)]


def png(width: int, height: int, rgba: bytearray) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride = width * 4
    raw = b"".join(b"\x00" + bytes(rgba[y * stride:(y + 1) * stride]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


class Canvas:
    def __init__(self, size: int) -> None:
        self.size = size
        self.rgba = bytearray(size * size * 4)

    def coverage(self, polygons: list[list[tuple[float, float]]]) -> list[float]:
        """Fraction of each pixel inside the polygons (even-odd rule), in pixel coordinates."""
        n = self.size
        cover = [0.0] * (n * n)
        edges = [(p[i], p[i + 1]) for p in polygons for i in range(len(p) - 1)]
        for row in range(n):
            for sub in range(SUBROWS):
                y = row + (sub + 0.5) / SUBROWS
                xs = sorted(x0 + (y - y0) * (x1 - x0) / (y1 - y0)
                            for (x0, y0), (x1, y1) in edges if (y0 <= y < y1) or (y1 <= y < y0))
                for left, right in zip(xs[::2], xs[1::2], strict=True):
                    left, right = max(left, 0.0), min(right, float(n))
                    if right <= left:
                        continue
                    first, last = int(left), min(int(right), n - 1)
                    base = row * n
                    if first == last:
                        cover[base + first] += (right - left) / SUBROWS
                        continue
                    cover[base + first] += (first + 1 - left) / SUBROWS
                    for x in range(first + 1, last):
                        cover[base + x] += 1 / SUBROWS
                    cover[base + last] += (right - last) / SUBROWS
        return cover

    def fill(self, polygons: list[list[tuple[float, float]]], colour: tuple[int, int, int]) -> None:
        for i, alpha in enumerate(self.coverage(polygons)):
            if alpha <= 0:
                continue
            alpha = min(alpha, 1.0)
            j = i * 4
            dst_a = self.rgba[j + 3] / 255
            out_a = alpha + dst_a * (1 - alpha)
            for c in range(3):
                mixed = colour[c] * alpha + self.rgba[j + c] * dst_a * (1 - alpha)
                self.rgba[j + c] = round(mixed / out_a)
            self.rgba[j + 3] = round(out_a * 255)

    def save(self, name: str) -> None:
        (OUT / name).write_bytes(png(self.size, self.size, self.rgba))


def rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, steps: int = 12) -> list[tuple[float, float]]:
    import math

    points: list[tuple[float, float]] = []
    corners = [(x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)]
    for cx, cy, start in corners:
        for s in range(steps + 1):
            a = math.radians(start + 90 * s / steps)
            points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    points.append(points[0])
    return points


def bolt(size: int, scale: float) -> list[tuple[float, float]]:
    """The bolt centred in a ``size`` square, ``scale`` of its side tall (the shape spans 20 of 24 units)."""
    unit = size * scale / 20
    cx, cy = 12, 12
    return [(size / 2 + (x - cx) * unit, size / 2 + (y - cy) * unit) for x, y in BOLT]


def app_icon(size: int, name: str, *, maskable: bool, rounded: bool) -> None:
    canvas = Canvas(size)
    background = rounded_rect(0, 0, size, size, size * 0.18) if rounded else rect(0, 0, size, size)
    canvas.fill([background], GREEN)
    # A maskable icon may be cropped to a circle of 80% of its side: keep the bolt well inside.
    canvas.fill([bolt(size, 0.52 if maskable else 0.72)], YELLOW)
    canvas.save(name)


def scan_icon(size: int) -> None:
    """Four viewfinder corners and a scan line."""
    canvas = Canvas(size)
    canvas.fill([rounded_rect(0, 0, size, size, size * 0.18)], GREEN)
    u = size / 24
    arms = []
    for (x, y, dx, dy) in [(5, 5, 1, 1), (19, 5, -1, 1), (5, 19, 1, -1), (19, 19, -1, -1)]:
        t = 1.6
        arms.append(rect(*sorted_box(x * u, y * u, (x + 5 * dx) * u, (y + t * dy) * u)))
        arms.append(rect(*sorted_box(x * u, y * u, (x + t * dx) * u, (y + 5 * dy) * u)))
    canvas.fill(arms, WHITE)
    canvas.fill([rect(7 * u, 11.2 * u, 17 * u, 12.8 * u)], YELLOW)
    canvas.save("shortcut-scan-96.png")


def sorted_box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def wallet_icon(size: int) -> None:
    """A wallet with a yellow clasp."""
    canvas = Canvas(size)
    canvas.fill([rounded_rect(0, 0, size, size, size * 0.18)], GREEN)
    u = size / 24
    canvas.fill([rounded_rect(4 * u, 6.5 * u, 20 * u, 18.5 * u, 2 * u)], WHITE)
    canvas.fill([rounded_rect(13 * u, 10.5 * u, 20 * u, 14.5 * u, 1.2 * u)], YELLOW)
    canvas.save("shortcut-wallet-96.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    app_icon(192, "icon-192.png", maskable=False, rounded=True)
    app_icon(512, "icon-512.png", maskable=False, rounded=True)
    app_icon(512, "icon-maskable-512.png", maskable=True, rounded=False)
    app_icon(180, "apple-touch-icon-180.png", maskable=False, rounded=False)
    scan_icon(96)
    wallet_icon(96)


if __name__ == "__main__":
    main()
