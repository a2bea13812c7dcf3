"""The HTML report is readable on its own: headless Chromium renders it (no network, no scripts) and the
screenshot shows the chart's lanes and the verdict badge. Skipped where Debian's `chromium` is not
installed (`apt-get install chromium`)."""

from pathlib import Path

import pytest
from measure.synthetic import scheduler_kill

from chaoslab.reports.html import NOT_READY, PALETTE, READY
from reports.chromium import CHROMIUM, HEIGHT, WIDTH, count, screenshot
from reports.test_reports import experiment, run_dir


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_chart_and_badge(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    d, _ = run_dir(tmp_path / "run", [scheduler_kill()], experiment())
    width, height, pixels = screenshot(d / "report.html", tmp_path)
    assert (width, height) == (WIDTH, HEIGHT)
    total = width * height
    blank = pixels[b"\xff\xff\xff"]
    assert total - blank > total * 0.03, "the screenshot is (nearly) blank"
    assert count(pixels, READY) > 2000, "no green lanes: the SVG chart did not render"
    assert count(pixels, NOT_READY) > 200, "no red stretches: the chart shows no disruption"
    assert count(pixels, PALETTE[0]) > 500, "no host colour: the leader lanes did not render"
    assert count(pixels, "#c62828", 20) > 100, "no FAIL badge"
