"""The HTML report is readable on its own: headless Chromium renders it (no network, no scripts) and the
screenshot shows the chart's lanes and the verdict badge. Skipped where Debian's `chromium` is not
installed (`apt-get install chromium`)."""

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from measure.synthetic import scheduler_kill

from chaoslab.reports.html import NOT_READY, PALETTE, READY
from reports.test_reports import experiment, run_dir

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


def count(rows: list[bytes], colour: str, tolerance: int = 12) -> int:
    want = bytes.fromhex(colour.lstrip("#"))
    return sum(1 for row in rows for j in range(0, len(row), 3)
               if all(abs(row[j + k] - want[k]) <= tolerance for k in range(3)))


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_chart_and_badge(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    d, _ = run_dir(tmp_path / "run", [scheduler_kill()], experiment())
    shot = tmp_path / "report.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},{HEIGHT}",
                    f"--screenshot={shot}", (d / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    width, height, rows = decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    total = width * height
    blank = sum(1 for row in rows for j in range(0, len(row), 3) if row[j:j + 3] == b"\xff\xff\xff")
    assert total - blank > total * 0.03, "the screenshot is (nearly) blank"
    assert count(rows, READY) > 2000, "no green lanes: the SVG chart did not render"
    assert count(rows, NOT_READY) > 200, "no red stretches: the chart shows no disruption"
    assert count(rows, PALETTE[0]) > 500, "no host colour: the leader lanes did not render"
    assert count(rows, "#c62828", 20) > 100, "no FAIL badge"
