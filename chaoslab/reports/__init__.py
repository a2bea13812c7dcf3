"""Reports of a finished experiment, written into its run directory: `verdict.json` (the versioned verdict),
`junit.xml` (one test case per SLO, for CI), `report.md` (a summary) and `report.html` (self-contained,
with a timeline chart). The run session calls `write_reports` after the last run; `chaoslab report RUN_DIR`
calls `rebuild`, which judges the saved timelines again, so any report can be rebuilt later.

Each format is a pure `render(...) -> str` in its own module; only this module touches files.

    >>> rebuild(Path("runs/20261123-151228-scheduler-leader-kill"))              # doctest: +SKIP
    [PosixPath('runs/…/verdict.json'), PosixPath('runs/…/junit.xml'), …]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from chaoslab.errors import SpecError
from chaoslab.execute import rundir
from chaoslab.execute.rundir import RunDir
from chaoslab.judge.assess import Assessment, assess
from chaoslab.judge.conditions import RENEWAL_WINDOW
from chaoslab.reports import html, json_report, junit, markdown
from chaoslab.spec.model import Experiment
from chaoslab.spec.serialize import experiment_from_json, experiment_to_json
from chaoslab.timeline import Timeline

__all__ = ["experiment_from_json", "experiment_to_json", "rebuild", "render_all", "write_reports"]


def render_all(experiment: Experiment, assessment: Assessment, timelines: Sequence[Timeline]) -> dict[str, str]:
    """Every report of a run directory, by file name, from the one assessment (verdict and gate computed
    once). Renders what was saved (times rounded as in timeline.jsonl), so `rebuild` gives the same bytes."""
    saved = [Timeline.from_records(tl.records()) for tl in timelines]
    a = assessment
    return {rundir.VERDICT: json_report.render(a.verdict),
            rundir.JUNIT: junit.render(experiment, a.verdict, a.measurements, a.gate),
            rundir.MARKDOWN: markdown.render(experiment, a.verdict, saved, a.measurements, a.gate),
            rundir.HTML: html.render(experiment, a.verdict, saved, a.measurements, a.gate)}


def write_reports(run_dir: RunDir, experiment: Experiment, assessment: Assessment,
                  timelines: Sequence[Timeline]) -> list[Path]:
    """Write verdict.json, junit.xml, report.md and report.html; returns their paths."""
    return run_dir.write_reports(render_all(experiment, assessment, timelines))


def _renewal_window(run_dir: RunDir) -> float:
    """As the run was judged: the window recorded in verdict.json, else target.json's, else the default."""
    for name, key in ((rundir.VERDICT, "renewalWindow"), (rundir.TARGET, "renewal_window")):
        try:
            value = json.loads((run_dir / name).read_text()).get(key)
        except (FileNotFoundError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, int | float):
            return float(value)
    return RENEWAL_WINDOW


def rebuild(path: Path, renewal_window: float | None = None) -> list[Path]:
    """Measure and judge the saved timelines of the run directory `path` again and rewrite its reports."""
    run_dir = RunDir(path)
    experiment = run_dir.experiment()
    timelines = run_dir.timelines()
    if not timelines:
        raise SpecError([(f"{path}: no saved timelines (runs/N/timeline.jsonl); the run ended before its "
                         f"first timeline was written, so there is nothing to report")])
    window = renewal_window if renewal_window is not None else _renewal_window(run_dir)
    return write_reports(run_dir, experiment, assess(experiment, timelines, window, run_dir.policy()), timelines)
