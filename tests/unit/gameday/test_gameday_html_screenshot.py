"""The game day's combined HTML report is readable on its own: headless Chromium renders it and the
screenshot shows the day's timeline (lanes, host colours, shaded fault windows) and the badge. Skipped
where Debian's `chromium` is not installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from measure.synthetic import scheduler_kill
from reports.chromium import CHROMIUM, HEIGHT, WIDTH, count, screenshot
from reports.test_reports import experiment, run_dir

from chaoslab.reports.gameday import write_day_reports
from chaoslab.reports.html import NOT_READY, PALETTE, READY
from chaoslab.timeline import Timeline


def shifted(tl: Timeline, seconds: float) -> Timeline:
    """The same run, started `seconds` later in wall-clock time."""
    records = list(tl.records())
    records[0] = {**records[0], "startedWall": tl.started_wall + seconds}
    return Timeline.from_records(records)


def day_dir(tmp_path: Path) -> Path:
    day = tmp_path / "day"
    steps = []
    base = scheduler_kill().started_wall
    for i, (name, takeover) in enumerate([("kill-1", 12.0), ("kill-2", 40.0)]):
        d = day / "experiments" / name
        d.mkdir(parents=True)
        _, verdict = run_dir(d, [shifted(scheduler_kill(takeover=takeover), 90.0 * i)], experiment())
        steps.append({"name": name, "experiment": "scheduler-leader-kill",
                      "status": "passed" if verdict.passed else "failed", "reason": "", "confirmation": "",
                      "runDir": f"experiments/{name}", "started": base + 90 * i, "finished": base + 90 * i + 60,
                      "after": []})
    steps.append({"name": "skipped-one", "experiment": "x", "status": "skipped", "confirmation": "",
                  "reason": "skipped: needs confirmation, but there is no terminal and no --yes", "runDir": None,
                  "started": None, "finished": None, "after": []})
    (day / "gameday.json").write_text(json.dumps({
        "name": "weekly", "description": "Two kills.", "target": "lab:gd", "window": None, "now": "",
        "started": base, "finished": base + 150, "stopped": None, "abort": {}, "totals": {}, "exitCode": 1,
        "steps": steps}))
    write_day_reports(day)
    return day


def test_the_day_report_has_one_suite_per_step_and_distributions(tmp_path: Path) -> None:
    d = day_dir(tmp_path)
    record = json.loads((d / "gameday.json").read_text())
    assert [s["status"] for s in record["steps"]] == ["passed", "failed", "skipped"]
    assert record["steps"][1]["distributions"]["schedulerTimeToNewLeader"]["max"] >= 30
    junit = (d / "junit.xml").read_text()
    assert junit.count("<testsuite ") == 3 and 'skipped="1"' in junit
    html = (d / "report.html").read_text()
    assert html.count("<title>kill-") >= 2 and "fault window" in html
    assert 'href="experiments/kill-1/report.html"' in html
    before = {n: (d / n).read_bytes() for n in ("gameday.json", "junit.xml", "summary.md", "report.html")}
    write_day_reports(d)  # `chaoslab report DAY_DIR` gives the same bytes
    assert {n: (d / n).read_bytes() for n in before} == before


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_the_day_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    d = day_dir(tmp_path)
    width, height, pixels = screenshot(d / "report.html", tmp_path)
    assert (width, height) == (WIDTH, HEIGHT)
    assert count(pixels, READY) > 2000, "no green lanes: the day chart did not render"
    assert count(pixels, NOT_READY) > 200, "no red stretches: the day chart shows no disruption"
    assert count(pixels, PALETTE[0]) > 500, "no host colour: the leader lanes did not render"
    assert count(pixels, "#fee6c8", 10) > 300, "no shaded fault window"
    assert count(pixels, "#c62828", 20) > 100, "no FAIL badge"
