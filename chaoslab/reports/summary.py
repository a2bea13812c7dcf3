"""The pull-request summary of a `chaoslab run` (`--summary FILE`): one Markdown comment for every
experiment of the file — the overall result, a table of experiments, each experiment's SLO table with
warnings, its key numbers and a link to its HTML report. Short enough for a PR comment (the full
`report.md` stays in the run directory). Starts with the marker `<!-- chaoslab-summary -->` so a CI job
can find and update its earlier comment instead of adding a new one. Pure; called by the run session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chaoslab.judge.gate import Gate
from chaoslab.judge.verdict import Verdict, format_value
from chaoslab.reports.markdown import cell, headline, result
from chaoslab.spec.model import METRICS

MARKER = "<!-- chaoslab-summary -->"

#: The numbers a reviewer wants first, shown when measured (the worst run's value).
KEY_METRICS = ("recoveryTime", "etcdTimeToNewLeader", "etcdLeaderElections", "schedulerTimeToNewLeader",
               "controllerManagerTimeToNewLeader", "apiserverUnavailable", "apiWriteUnavailable",
               "reschedulingTime", "lostWrites")


@dataclass(frozen=True)
class Entry:
    experiment: str
    verdict: Verdict | None
    gate: Gate | None
    link: str
    """Where the HTML report is (URL or run-directory path); "" when there is none."""
    error: str = ""


def key_numbers(verdict: Verdict) -> list[str]:
    out = []
    for name in KEY_METRICS:
        values = [v for run in verdict.run_values if (v := run.get(name)) is not None]
        if values:
            out.append(f"{name} {format_value(max(values), METRICS[name])}")
    return out


def render(entries: Sequence[Entry], exit_code: int) -> str:
    failed = [e for e in entries if e.gate is not None and not e.gate.passed]
    broken = [e for e in entries if e.error or e.gate is None]
    warned = sum(len([s for s in e.gate.slos if s.status in ("warn", "ignored")]) for e in entries if e.gate)
    overall = "⛔ NOT RUN" if broken else "❌ FAIL" if failed else "✅ PASS"
    notes = [f"{len(entries)} experiment{'s' if len(entries) != 1 else ''}"]
    notes += [f"{warned} warning{'s' if warned != 1 else ''}"] if warned else []
    out = [MARKER, f"## chaoslab: {overall} — {', '.join(notes)}", "",
           "| experiment | result | SLOs met | report |", "| --- | --- | --- | --- |"]
    for e in entries:
        link = f"[report]({e.link})" if e.link else "–"
        if e.gate is None or e.verdict is None:
            out.append(f"| {cell(e.experiment)} | ⛔ not carried out | – | {link} |")
            continue
        met = sum(r.passed for r in e.verdict.slos)
        icon = "✅" if e.gate.passed else "❌"
        out.append(f"| {cell(e.experiment)} | {icon} {cell(headline(e.gate))} | {met}/{len(e.verdict.slos)} | {link} |")
    out.append("")
    for e in entries:
        out += [f"### {e.experiment}", ""]
        if e.error or e.gate is None or e.verdict is None:
            out += [f"The experiment could not be carried out: {e.error or 'no verdict'}", ""]
            continue
        if e.gate.slos:
            out += ["| SLO | target | measured | result |", "| --- | --- | --- | --- |"]
            out += [f"| {s.result.metric} | {s.result.target} | {s.result.shown} "
                    f"| {cell(result(s))} |" for s in e.gate.slos]
            out.append("")
        else:
            out += ["No SLO targets: nothing can fail.", ""]
        runs = e.verdict.runs
        if numbers := key_numbers(e.verdict):
            worst = f" (worst of {runs} runs)" if runs > 1 else ""
            out += [f"Key numbers{worst}: " + " · ".join(numbers), ""]
        for s in e.gate.slos:
            if s.status == "fail":
                out.append(f"- ❌ {cell(s.result.message)} — {cell(s.result.evidence)}")
            elif s.status in ("warn", "ignored"):
                out.append(f"- ⚠️ {s.result.metric} {cell(s.note)}")
        if any(s.status != "pass" for s in e.gate.slos):
            out.append("")
    policy = next((e.gate.policy for e in entries if e.gate), None)
    gate = f"gate `{policy.describe()}` · " if policy else ""
    out.append(f"<sub>{gate}exit code {exit_code} (0 pass, 1 SLO violated, 2 invalid input, 3 not carried "
               f"out) · definitions: docs/measurements.md</sub>")
    return "\n".join(out) + "\n"
