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
from pathlib import Path

from chaoslab.errors import SpecError
from chaoslab.judge.conditions import RENEWAL_WINDOW
from chaoslab.judge.gate import Policy, evaluate
from chaoslab.judge.measure import Measurements, measure
from chaoslab.judge.verdict import Verdict, judge
from chaoslab.reports import html, json_report, junit, markdown
from chaoslab.spec.model import Experiment
from chaoslab.spec.serialize import experiment_from_json, experiment_to_json
from chaoslab.timeline import Timeline

__all__ = ["experiment_from_json", "experiment_to_json", "rebuild", "write_reports"]


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_reports(run_dir: Path, experiment: Experiment, verdict: Verdict, timelines: list[Timeline],
                  measurements: list[Measurements], policy: Policy | None = None) -> list[Path]:
    """Write verdict.json, junit.xml, report.md and report.html; returns their paths. The gate policy is
    the one saved in the run directory (`gate.json`, written by the run session) unless one is given."""
    # Render what was saved (times rounded as in timeline.jsonl), so `rebuild` gives the same bytes.
    timelines = [Timeline.from_records(tl.records()) for tl in timelines]
    gate = evaluate(verdict, policy if policy is not None else Policy.load(run_dir))
    return [
        _write(run_dir / "verdict.json", json_report.render(verdict)),
        _write(run_dir / "junit.xml", junit.render(experiment, verdict, measurements, gate)),
        _write(run_dir / "report.md", markdown.render(experiment, verdict, timelines, measurements, gate)),
        _write(run_dir / "report.html", html.render(experiment, verdict, timelines, measurements, gate)),
    ]


def _renewal_window(run_dir: Path) -> float:
    """As the run was judged: the window recorded in verdict.json, else target.json's, else the default."""
    for name, key in (("verdict.json", "renewalWindow"), ("target.json", "renewal_window")):
        try:
            value = json.loads((run_dir / name).read_text()).get(key)
        except (FileNotFoundError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, int | float):
            return float(value)
    return RENEWAL_WINDOW


def rebuild(run_dir: Path, renewal_window: float | None = None) -> list[Path]:
    """Measure and judge the saved timelines of `run_dir` again and rewrite its reports."""
    try:
        experiment = experiment_from_json(json.loads((run_dir / "experiment.json").read_text()))
    except FileNotFoundError:
        raise SpecError([(f"{run_dir}: not a chaoslab run directory (no experiment.json); pass the directory "
                         f"`chaoslab run` printed, e.g. runs/<time>-<experiment>")]) from None
    except (ValueError, KeyError) as exc:
        raise SpecError([f"{run_dir / 'experiment.json'}: cannot be read ({exc})"]) from exc
    files = sorted((run_dir / "runs").glob("*/timeline.jsonl"),
                   key=lambda p: (not p.parent.name.isdigit(), int(p.parent.name) if p.parent.name.isdigit() else 0,
                                  p.parent.name))
    if not files:
        raise SpecError([(f"{run_dir}: no saved timelines (runs/N/timeline.jsonl); the run ended before its "
                         f"first timeline was written, so there is nothing to report")])
    try:
        timelines = [Timeline.load(f) for f in files]
    except (ValueError, KeyError) as exc:
        raise SpecError([f"{run_dir}: a timeline cannot be read ({exc})"]) from exc
    window = renewal_window if renewal_window is not None else _renewal_window(run_dir)
    measurements = [measure(tl, experiment.steady_state, experiment.settle, window) for tl in timelines]
    verdict = judge(experiment, measurements)
    return write_reports(run_dir, experiment, verdict, timelines, measurements)
