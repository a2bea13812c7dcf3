"""`report.md`: the verdict for people reading a pull request or a CI log — one row per SLO, the recovery
phases of each run, the distribution over runs (when there are several) and every measurement with its
evidence. Called by `chaoslab.reports.write_reports`."""

from __future__ import annotations

import time

from chaoslab.measure import Measurements
from chaoslab.run.timeline import Timeline
from chaoslab.spec.model import METRICS, Experiment
from chaoslab.verdict import Verdict, format_value


def cell(text: object) -> str:
    """A table cell: pipes escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def started(timeline: Timeline) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timeline.started_wall))


def render(experiment: Experiment, verdict: Verdict, timelines: list[Timeline],
           measurements: list[Measurements]) -> str:
    status = "PASS" if verdict.passed else "FAIL"
    out = [f"# {experiment.name}: {status}", ""]
    if experiment.description:
        out += [experiment.description, ""]
    faults = "; ".join(f"`{f.kind}` " + ", ".join(f"{k}={v}" for k, v in f.params.items()) for f in experiment.faults)
    out += [f"- faults: {faults}, held {experiment.duration:g} s",
            f"- steady state: {', '.join(experiment.steady_state)} (settle {experiment.settle:g} s)",
            f"- runs: {verdict.runs}" + (f", first started {started(timelines[0])}" if timelines else ""), ""]

    out += ["## SLOs", ""]
    if verdict.slos:
        out += ["| SLO | target | measured | result | evidence |", "| --- | --- | --- | --- | --- |"]
        out += [f"| {r.metric} | {r.target} | {format_value(r.measured, r.unit)} | "
                f"{'pass' if r.passed else '**FAIL**'} | {cell(r.evidence)} |" for r in verdict.slos]
        notes = [f"- {r.metric}: {r.confidence}" for r in verdict.slos if r.confidence]
        out += ["", *notes, ""] if notes else [""]
    else:
        out += ["The experiment sets no SLO targets, so nothing can fail.", ""]

    if verdict.runs > 1:
        out += ["## Distribution over runs", "", "| SLO | n | min | median | p95 | max | per run |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in verdict.slos:
            d = r.distribution
            stats = [format_value(None if (v := d[k]) is None else float(v), r.unit)
                     for k in ("min", "median", "p95", "max")]
            per_run = ", ".join(format_value(v, r.unit) for v in r.values)
            out.append(f"| {r.metric} | {d['n']} | {' | '.join(stats)} | {per_run} |")
        out.append("")

    for i, m in enumerate(measurements, 1):
        title = f"Run {i}" if len(measurements) > 1 else "The run"
        out += [f"## {title}: recovery {format_value(m.values.get('recoveryTime'), 's')}", ""]
        if delays := [e.detail for e in (timelines[i - 1].events_of("degrade") if i <= len(timelines) else [])]:
            out += [f"- delay of {d['host']}'s links: {d['delay_ms']} ± {d['jitter_ms']} ms by "
                    f"`{d['mechanism']}` on {', '.join(d['on'])}" for d in delays] + [""]
        if m.phases:
            out += ["| phase (ends when) | from | to | seconds | evidence |", "| --- | --- | --- | --- | --- |"]
            out += [f"| {p.name} | {p.start:.2f} | {p.end:.2f} | {p.seconds:.2f} | {cell(p.evidence)} |"
                    for p in m.phases]
            total = sum(p.seconds for p in m.phases)
            out += [(f"| **total** | {m.phases[0].start:.2f} | {m.phases[-1].end:.2f} | {total:.2f} | "
                    f"{'= recoveryTime' if m.values.get('recoveryTime') is not None else 'not recovered'} |"), ""]
        out += ["| metric | value | evidence |", "| --- | --- | --- |"]
        out += [f"| {name} | {format_value(m.values.get(name), unit)} | {cell(m.evidence.get(name, ''))} |"
                for name, unit in METRICS.items()]
        out.append("")
    out.append("Times are seconds since the run started; definitions in docs/measurements.md.")
    return "\n".join(out) + "\n"
