"""Headless Chromium for the report tests: render a page to a PNG and read its pixels back (a small PNG
decoder, so no imaging library is needed)."""

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1200, 1000


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA PNG, as Chromium writes them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", (0, 0, 0, 0)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            header = (width, height, depth, colour)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = header
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format: depth {depth}, colour type {colour}"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, up_left = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(b for j in range(0, stride, 4) for b in line[j:j + 3]))
        prev = line
    return width, height, rows


def colours(rows: list[bytes]) -> Counter[bytes]:
    """How many pixels of each colour (RGB bytes): counted once, then asked per colour by `count`."""
    return Counter(row[j:j + 3] for row in rows for j in range(0, len(row), 3))


def count(pixels: Counter[bytes], colour: str, tolerance: int = 12) -> int:
    """Pixels within `tolerance` of `colour` (#rrggbb) on every channel."""
    want = bytes.fromhex(colour.lstrip("#"))
    return sum(n for rgb, n in pixels.items() if all(abs(rgb[k] - want[k]) <= tolerance for k in range(3)))


def screenshot(page: Path, workdir: Path) -> tuple[int, int, Counter[bytes]]:
    """Render `page` at WIDTH × HEIGHT with headless Chromium; (width, height, `colours` of its pixels)."""
    assert CHROMIUM is not None
    shot = workdir / f"{page.stem}.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--no-first-run", f"--user-data-dir={workdir / 'profile'}", f"--window-size={WIDTH},{HEIGHT}",
                    f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    width, height, rows = decode_png(shot.read_bytes())
    return width, height, colours(rows)
