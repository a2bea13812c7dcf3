"""The combined report of a game day, written into its day directory from the day's record
(`gameday.json`, as the game day session wrote it) and each step's run directory: `gameday.json` again,
now with every step's verdict and the distributions over its runs; `junit.xml` (one suite per step);
`summary.md`; and `report.html` with the timeline of the whole day — the lanes of the experiment report
(`chaoslab.reports.html`), drawn over wall-clock time with every experiment's fault windows shaded.

`write_day_reports` is called by the session and by `chaoslab report DAY_DIR`, which rebuilds the same
files later. Rendering is pure; only `write_day_reports` touches files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.execute import rundir
from chaoslab.execute.rundir import RunDir, write_text
from chaoslab.judge.gate import Gate, evaluate
from chaoslab.judge.measure import Measurements, measure
from chaoslab.judge.verdict import Verdict, distribution, format_value
from chaoslab.reports import _renewal_window, html, junit
from chaoslab.reports.markdown import cell, headline
from chaoslab.spec.model import METRICS, Experiment
from chaoslab.timeline import Timeline

SCHEMA = "chaoslab.io/gameday/v1"
STATUS_TEXT = {"passed": "PASS", "failed": "FAIL", "error": "NOT CARRIED OUT", "skipped": "skipped"}
STATUS_ICON = {"passed": "✅", "failed": "❌", "error": "⛔", "skipped": "⏭️"}
ERROR_GREY = "#999999"


@dataclass
class StepRun:
    """One step of the day: its record and, when it ran, what its run directory holds."""

    record: dict[str, Any]
    run_dir: Path | None = None
    experiment: Experiment | None = None
    timelines: list[Timeline] = field(default_factory=list)
    measurements: list[Measurements] = field(default_factory=list)
    verdict: Verdict | None = None
    gate: Gate | None = None

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def status(self) -> str:
        return str(self.record["status"])


def load_step(day_dir: Path, record: dict[str, Any]) -> StepRun:
    step = StepRun(record)
    if not record.get("runDir"):
        return step
    d = RunDir(day_dir / record["runDir"])
    step.run_dir = d.path
    try:
        step.experiment = d.experiment()
    except SpecError:
        return step
    step.timelines = d.timelines()
    window = _renewal_window(d)
    exp = step.experiment
    step.measurements = [measure(tl, exp.steady_state, exp.settle, window) for tl in step.timelines]
    step.verdict = d.verdict()
    if step.verdict is not None:
        step.gate = evaluate(step.verdict, d.policy())
    return step


def distributions(verdict: Verdict) -> dict[str, dict[str, float | int | None]]:
    """min, median, p95, max and n over the runs, for every metric some run measured."""
    out = {}
    for metric in METRICS:
        values = [float(v) for run in verdict.run_values if (v := run.get(metric)) is not None]
        if values:
            out[metric] = distribution(values)
    return out


def to_json(record: dict[str, Any], steps: Sequence[StepRun]) -> dict[str, Any]:
    out = {"schema": SCHEMA, **{k: v for k, v in record.items() if k not in ("schema", "steps")}}
    out["steps"] = []
    for s in steps:
        entry = {k: v for k, v in s.record.items() if k not in ("passed", "runs", "slos", "distributions")}
        if s.verdict is not None and s.gate is not None:
            entry.update(passed=s.gate.passed, runs=s.verdict.runs,
                         slos=[{"metric": g.result.metric, "target": g.result.target, "measured": g.result.measured,
                                "unit": g.result.unit, "status": g.status} for g in s.gate.slos],
                         distributions=distributions(s.verdict))
        out["steps"].append(entry)
    return out


def result_line(record: dict[str, Any]) -> str:
    code = record.get("exitCode")
    return {0: "PASS", 1: "FAIL"}.get(code, "NOT CARRIED OUT") if isinstance(code, int) else "?"


def _when(wall: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall)) if wall else "–"


# ---- Markdown --------------------------------------------------------------------------------------------
def render_markdown(record: dict[str, Any], steps: Sequence[StepRun]) -> str:
    out = ["<!-- chaoslab-gameday -->", f"## Game day {record['name']}: {result_line(record)}", ""]
    if record.get("description"):
        out += [record["description"], ""]
    out += [(f"Started {_when(record.get('started'))} against {record.get('target')}; "
            f"{sum(s.status != 'skipped' for s in steps)} of {len(steps)} steps ran."), ""]
    if record.get("stopped"):
        out += [f"**The day stopped early:** {cell(record['stopped'])}", ""]
    out += ["| step | experiment | result | runs | SLOs met | note |", "| --- | --- | --- | --- | --- | --- |"]
    for s in steps:
        res = headline(s.gate) if s.gate else STATUS_TEXT[s.status]
        met = f"{sum(r.passed for r in s.verdict.slos)}/{len(s.verdict.slos)}" if s.verdict else "–"
        note = "; ".join(x for x in (s.record.get("confirmation", ""), s.record.get("reason", "")) if x)
        out.append(f"| {cell(s.name)} | {cell(s.record['experiment'])} | {STATUS_ICON[s.status]} {cell(res)} | "
                   f"{s.verdict.runs if s.verdict else '–'} | {met} | {cell(note) or '–'} |")
    out.append("")
    failed = [(s, g) for s in steps if s.gate for g in s.gate.slos if g.status == "fail"]
    if failed:
        out += ["Violated SLOs:", ""]
        out += [f"- {cell(s.name)}: {cell(g.result.message)} — {cell(g.result.evidence)}" for s, g in failed]
        out.append("")
    out += ["### Distributions over runs", "", "| step | metric | n | min | median | p95 | max |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in steps:
        for metric, d in (distributions(s.verdict) if s.verdict else {}).items():
            unit = METRICS[metric]
            vals = [format_value(None if (v := d[k]) is None else float(v), unit) for k in ("min", "median", "p95", "max")]
            out.append(f"| {cell(s.name)} | {metric} | {d['n']} | {' | '.join(vals)} |")
    out.append("")
    totals = record.get("totals") or {}
    if totals:
        out += ["Day totals: " + ", ".join(f"{m} {v:.2f} s (limit {record['abort'][m]:g} s)"
                                           for m, v in totals.items()), ""]
    out.append(f"<sub>exit code {record.get('exitCode')} (0 pass, 1 SLO violated, 2 invalid input or outside "
               f"the window, 3 not carried out or stopped) · each step's report.html is in its run directory</sub>")
    return "\n".join(out) + "\n"


# ---- HTML ------------------------------------------------------------------------------------------------
def _clip(lanes: list[html.Lane], observed: list[tuple[float, float]]) -> list[html.Lane]:
    """Segments only where probes ran: between experiments nothing was observed."""
    return [(label, [(x, y, fill, tip, op) for a, b, fill, tip, op in segments
                     for x, y in html._overlap(observed, a, b)]) for label, segments in lanes]


def day_chart(record: dict[str, Any], steps: Sequence[StepRun], colours: dict[str, str]) -> str:
    """The whole day on one time axis (seconds since the day started): which experiment ran, the steady
    state, and the sample lanes of the experiment report, with every fault window shaded."""
    day_start = float(record.get("started") or 0.0)
    merged = Timeline(day_start, 0.0, lambda: 0.0)
    observed: list[tuple[float, float]] = []
    runs_lane: list[html.Segment] = []
    steady: list[html.Segment] = []
    windows: list[tuple[float, float, str]] = []
    window = 5.0
    for s in steps:
        fill = {"passed": html.READY, "failed": html.NOT_READY}.get(s.status, ERROR_GREY)
        for i, (tl, m) in enumerate(zip(s.timelines, s.measurements), 1):
            off = tl.started_wall - day_start
            window = m.renewal_window
            observed.append((off, off + m.end))
            label = f"{s.name}" + (f" run {i}" if len(s.timelines) > 1 else "")
            runs_lane.append((off, off + m.end, fill, f"{label}: {STATUS_TEXT[s.status]}", 1.0))
            for smp in tl.samples:
                merged.sample(smp.probe, smp.subject, t=smp.t + off, **smp.values)
            ok = m.steady_state_intervals
            gaps = [(a, b) for a, b in zip([0.0, *(iv[1] for iv in ok)], [*(iv[0] for iv in ok), m.end]) if b > a]
            steady += [(off + a, off + b, html.READY, f"{label}: steady state holds", 1.0) for a, b in ok]
            steady += [(off + a, off + b, html.NOT_READY, f"{label}: steady state does not hold", 1.0) for a, b in gaps]
            if m.inject is not None:
                stop = m.revert if m.revert is not None else m.end
                windows.append((off + m.inject, off + stop,
                                f"{label}: fault window {off + m.inject:.1f}–{off + stop:.1f} s"))
    end = max([b for _, b in observed] + [1.0])
    lanes: list[html.Lane] = [("experiment", runs_lane), ("steady state", sorted(steady))]
    lanes += _clip(html.sample_lanes(merged, end, window, colours), sorted(observed))
    tick = (lambda t: f"{t / 60:g} min") if end > 300 else (lambda t: f"{t:g} s")
    svg, x, bottom = html.frame(lanes, end, f"timeline of game day {record['name']}", windows, tick)
    for a, b, _, tip, _ in runs_lane:
        svg.append(f'<line x1="{x(a):.1f}" y1="{html.TOP - 8}" x2="{x(a):.1f}" y2="{bottom}" stroke="#888" '
                   f'stroke-dasharray="2 3"/>')
    svg.append("</svg>")
    return "\n".join(svg)


def render_html(record: dict[str, Any], steps: Sequence[StepRun], day_dir: Path) -> str:
    e = escape
    result = result_line(record)
    badge = "pass" if result == "PASS" else "fail"
    body = [f'<h1>Game day {e(record["name"])} <span class="badge {badge}">{e(result)}</span></h1>']
    if record.get("description"):
        body.append(f"<p>{e(record['description'])}</p>")
    meta = [f"started {_when(record.get('started'))}", f"finished {_when(record.get('finished'))}",
            f"target {record.get('target')}"]
    if record.get("window"):
        meta.append(f"window {record['window']} (checked at {record.get('now')})")
    body.append(f'<p class="meta">{e(" · ".join(meta))}</p>')
    if record.get("stopped"):
        body.append(f'<p><b class="bad">The day stopped early:</b> {e(record["stopped"])}</p>')
    body.append("<h2>Steps</h2>")
    rows = []
    css = {"passed": "ok", "failed": "bad", "error": "bad", "skipped": "warn"}
    for s in steps:
        res = headline(s.gate) if s.gate else STATUS_TEXT[s.status]
        met = f"{sum(r.passed for r in s.verdict.slos)}/{len(s.verdict.slos)}" if s.verdict else "–"
        note = "; ".join(x for x in (s.record.get("confirmation", ""), s.record.get("reason", "")) if x)
        link = (f'<a href="{e(str(s.run_dir.relative_to(day_dir)))}/report.html">report</a>'
                if s.run_dir and (s.run_dir / rundir.HTML).exists() else "–")
        rows.append([e(s.name), e(s.record["experiment"]), f'<span class="{css[s.status]}">{e(res)}</span>',
                     str(s.verdict.runs) if s.verdict else "–", met, e(note) or "–", link])
    table = html._table(["step", "experiment", "result", "runs", "SLOs met", "note", "report"], rows, {3, 4})
    for name in set(css.values()):
        table = table.replace(f'<td><span class="{name}">', f'<td class="{name}"><span>')
    body.append(table)
    colours = html._hosts(tl for s in steps for tl in s.timelines)
    if any(s.timelines for s in steps):
        body.append("<h2>The day's timeline</h2>")
        body.append(day_chart(record, steps, colours))
        body.append(html._legend(colours))
        body.append('<p class="note">Seconds since the day started; shaded: fault windows; dashed lines: an '
                    "experiment's run starts; blank: between experiments (no probes ran).</p>")
    totals = record.get("totals") or {}
    if totals:
        body.append('<p class="meta">Day totals: ' + e(", ".join(
            f"{m} {v:.2f} s (limit {record['abort'][m]:g} s)" for m, v in totals.items())) + "</p>")
    body.append("<h2>Distributions over runs</h2>")
    rows = []
    for s in steps:
        for metric, d in (distributions(s.verdict) if s.verdict else {}).items():
            unit = METRICS[metric]
            rows.append([e(s.name), e(metric), str(d["n"]), *(e(format_value(None if (v := d[k]) is None else float(v),
                                                                             unit)) for k in ("min", "median", "p95", "max"))])
    body.append(html._table(["step", "metric", "n", "min", "median", "p95", "max"], rows, {2, 3, 4, 5, 6})
                if rows else "<p>No step was judged.</p>")
    body.append('<p class="note">Definitions: docs/measurements.md; the game day: docs/gamedays.md.</p>')
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>game day {e(record["name"])}: '
            f"{e(result)} · chaoslab</title><style>{html.CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def render_junit(steps: Sequence[StepRun], name: str) -> str:
    docs = [text for s in steps if s.run_dir and s.verdict
            if (text := RunDir(s.run_dir).read_report(rundir.JUNIT)) is not None]
    errors = [(s.name, s.record.get("reason", "")) for s in steps if s.status == "error"]
    skipped = [(s.name, s.record.get("reason", "")) for s in steps if s.status == "skipped"]
    return junit.merge(docs, errors, skipped, name=f"chaoslab game day {name}")


def write_day_reports(day_dir: Path) -> list[Path]:
    """(Re)write gameday.json, junit.xml, summary.md and report.html from the record and the run dirs."""
    record = json.loads((day_dir / "gameday.json").read_text())
    steps = [load_step(day_dir, r) for r in record["steps"]]
    data = to_json(record, steps)
    return [
        write_text(day_dir / "gameday.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n"),
        write_text(day_dir / "junit.xml", render_junit(steps, record["name"])),
        write_text(day_dir / "summary.md", render_markdown(data, steps)),
        write_text(day_dir / "report.html", render_html(data, steps, day_dir)),
    ]
