"""What a person sees in the terminal while experiments run: executor observers (the live view on a
terminal, plain progress lines otherwise) and the verdict table. Observers only read the `Progress` the
executor hands them; nothing here changes a run.

    >>> with live_view(experiment, target, console) as observer:                  # doctest: +SKIP
    ...     execute(plan, target, run_dir, observers=[observer])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from chaoslab.execute.executor import Observer, Progress
from chaoslab.judge.gate import Gate
from chaoslab.judge.measure import measure
from chaoslab.judge.verdict import format_value
from chaoslab.spec.model import METRICS, Experiment
from chaoslab.targets import Target

STATUS_STYLE = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "warn": "[yellow]pass, warning[/]",
                "ignored": "[yellow]FAIL, not gating[/]"}
"""The colour of each gate status; the words are the gate's own (`GatedSlo.label`, inconclusive included)."""


def _leaders(view: Progress) -> dict[str, str]:
    tl = view.timeline
    if tl is None:
        return {}
    out = {}
    etcd = [s for s in tl.samples_of("etcd")[-6:] if s.values.get("leader")]
    out["etcd"] = str(etcd[-1].values["leader"]) if etcd else "none"
    for lease in ("kube-scheduler", "kube-controller-manager"):
        samples = tl.samples_of("lease", lease)
        out[lease] = str(samples[-1].values.get("holder")) if samples else "?"
    return out


class LiveSlos:
    """The SLOs as far as the run so far tells, for the live view: the timeline measured again at most
    once a second (a measurement of a short timeline takes milliseconds)."""

    def __init__(self, experiment: Experiment, renewal_window: float) -> None:
        self.experiment = experiment
        self.renewal_window = renewal_window
        self.at = -1.0
        self.values: dict[str, float | None] = {}

    def rows(self, view: Progress) -> list[tuple[str, str]]:
        exp = self.experiment
        if view.timeline is not None and view.elapsed - self.at >= 1.0:
            self.at = view.elapsed
            self.values = measure(view.timeline, exp.steady_state, exp.settle, self.renewal_window).values
        out = []
        for slo in exp.slos:
            value = self.values.get(slo.metric)
            unit = METRICS.get(slo.metric, "s")
            if value is None:
                out.append((f"{slo.metric} ({slo.aggregate} {slo.threshold:g})", "[dim]not yet measured[/]"))
                continue
            bad = value < slo.threshold if slo.aggregate == "min" else value > slo.threshold
            shown = format_value(value, unit)
            out.append((f"{slo.metric} ({slo.aggregate} {slo.threshold:g})",
                        f"[red]{shown} violated[/]" if bad else f"[green]{shown}[/]"))
        return out


def render(view: Progress, experiment: Experiment, slos: LiveSlos | None = None) -> Table:
    table = Table(title=escape(f"{experiment.name} — run {view.run}/{view.runs}"), show_header=False, box=None)
    table.add_row("phase", f"[bold]{view.phase}[/]")
    table.add_row("elapsed", f"{view.elapsed:6.1f} s")
    for name, holder in _leaders(view).items():
        table.add_row(f"{name} leader", escape(holder))
    table.add_row("steady state", "[green]holds[/]" if not view.failing else f"[red]{', '.join(view.failing)}[/]")
    for name, status in slos.rows(view) if slos else []:
        table.add_row(name, status)
    return table


def verdict_table(gate: Gate) -> Table:
    from chaoslab.reports.markdown import headline

    table = Table(title=escape(f"verdict: {headline(gate)}"))
    for col in ("SLO", "target", "measured", "result"):
        table.add_column(col)
    for s in gate.slos:
        r = s.result
        style = "yellow" if s.outcome == "inconclusive" else STATUS_STYLE[s.status].split("]")[0].strip("[")
        table.add_row(r.metric, r.target, escape(r.shown), f"[{style}]{escape(s.label)}[/]")
    return table


@contextlib.contextmanager
def live_view(experiment: Experiment, target: Target, console: Console, live: bool = True) -> Iterator[Observer]:
    """An observer for the executor: the live table on a terminal (when `live`), else a line per phase."""
    if live and console.is_terminal:
        slos = LiveSlos(experiment, target.renewal_window)
        with Live(render(Progress(), experiment), console=console, refresh_per_second=4) as screen:
            yield lambda view: screen.update(render(view, experiment, slos))
        return
    last = [""]

    def plain(view: Progress) -> None:
        if view.phase != last[0]:
            console.print(f"  run {view.run}/{view.runs}: {view.phase} (t={view.elapsed:.1f} s)", highlight=False)
            last[0] = view.phase

    yield plain
