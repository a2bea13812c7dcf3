"""One `chaoslab run`: load the file, pick the target, make the run directory, run every experiment with
a live view, then measure, judge and write the reports. Also `chaoslab recover`. Called by the CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from chaoslab.measure import measure
from chaoslab.reports import experiment_to_json, write_reports
from chaoslab.run.runner import Runner, RunView, new_run_dir, recover
from chaoslab.spec import load
from chaoslab.spec.model import METRICS, Experiment
from chaoslab.spec.probesets import SINGLE_PROBES, find_probe_set, load_probe_set
from chaoslab.targets import Target, describe, resolve_target
from chaoslab.verdict import Verdict, format_value, judge

#: The default probe set, for an installed chaoslab run outside a checkout that has probes/.
CONTROL_PLANE: list[dict[str, Any]] = [{"kind": "etcd", "interval": 0.1}, {"kind": "lease"}, {"kind": "apiserver", "interval": 0.25},
                 {"kind": "canary", "interval": 2.0}]


def probes_for(experiment: Experiment) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in experiment.probes:
        if not isinstance(name, str):
            out.append(dict(name))
        elif name in SINGLE_PROBES:
            out.append({"kind": name})
        elif name == "control-plane" and find_probe_set(name) is None:
            out.extend(CONTROL_PLANE)
        else:
            out.extend(load_probe_set(name))
    # One sampler per kind: a set and a single probe naming the same kind must not double the load.
    probes = list({p["kind"]: p for p in out}.values())
    for p in probes:
        if p["kind"] == "workloads" and not p.get("namespaces"):
            p["namespaces"] = fault_namespaces(experiment)
    return probes


def fault_namespaces(experiment: Experiment) -> list[str]:
    """The namespaces the experiment's faults may disrupt (`namespaces`/`namespace` params; `*` for all),
    which the workloads probe watches unless its probe set names others; `default` if none is named."""
    names: list[str] = []
    for f in experiment.faults:
        value = f.params.get("namespaces", f.params.get("namespace"))
        names += [value] if isinstance(value, str) else list(value or [])
    return list(dict.fromkeys(str(n) for n in names)) or ["default"]


def _leaders(view: RunView) -> dict[str, str]:
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

    def rows(self, view: RunView) -> list[tuple[str, str]]:
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


def render(view: RunView, experiment: Experiment, slos: LiveSlos | None = None) -> Table:
    table = Table(title=f"{experiment.name} — run {view.run}/{view.runs}", show_header=False, box=None)
    table.add_row("phase", f"[bold]{view.phase}[/]")
    table.add_row("elapsed", f"{view.elapsed:6.1f} s")
    for name, holder in _leaders(view).items():
        table.add_row(f"{name} leader", holder)
    table.add_row("steady state", "[green]holds[/]" if not view.failing else f"[red]{', '.join(view.failing)}[/]")
    for name, status in slos.rows(view) if slos else []:
        table.add_row(name, status)
    return table


def verdict_table(verdict: Verdict) -> Table:
    table = Table(title=f"verdict: {'PASS' if verdict.passed else 'FAIL'}")
    for col in ("SLO", "target", "measured", "result"):
        table.add_column(col)
    for r in verdict.slos:
        table.add_row(r.metric, r.target, format_value(r.measured, r.unit),
                      "[green]pass[/]" if r.passed else "[red]FAIL[/]")
    return table


def run_experiment(experiment: Experiment, target: Target, runs_root: Path, *, live: bool,
                   console: Console) -> tuple[Verdict, Path]:
    run_dir = new_run_dir(runs_root, experiment)
    (run_dir / "experiment.json").write_text(json.dumps(experiment_to_json(experiment), indent=1))
    (run_dir / "target.json").write_text(json.dumps(describe(target), indent=1))
    if experiment.source and experiment.source.exists():
        shutil.copy(experiment.source, run_dir / "experiment.yaml")
    console.print(f"running [bold]{experiment.name}[/] against {target.name} → {run_dir}")
    if live and console.is_terminal:
        slos = LiveSlos(experiment, target.renewal_window)
        with Live(render(RunView(), experiment), console=console, refresh_per_second=4) as screen:
            runner = Runner(experiment, target, run_dir, probes_for(experiment),
                            on_update=lambda v: screen.update(render(v, experiment, slos)))
            timelines = runner.run()
    else:
        last = [""]

        def plain(view: RunView) -> None:
            if view.phase != last[0]:
                console.print(f"  run {view.run}/{view.runs}: {view.phase} (t={view.elapsed:.1f} s)")
                last[0] = view.phase

        timelines = Runner(experiment, target, run_dir, probes_for(experiment), on_update=plain).run()
    measurements = [measure(tl, experiment.steady_state, experiment.settle, target.renewal_window)
                    for tl in timelines]
    verdict = judge(experiment, measurements)
    write_reports(run_dir, experiment, verdict, timelines, measurements)
    console.print(verdict_table(verdict))
    console.print(f"reports: {run_dir}/report.html, report.md, junit.xml, verdict.json")
    return verdict, run_dir


def run_file(path: Path, *, target: str | None, runs_root: Path, runs: int | None, live: bool,
             console: Console) -> list[Verdict]:
    experiments = load(path)
    verdicts = []
    for exp in experiments:
        if runs:
            exp = dataclasses.replace(exp, runs=runs)
        tgt = resolve_target(target, exp.target.kind if exp.target else None,
                             exp.target.params if exp.target else None)
        verdicts.append(run_experiment(exp, tgt, runs_root, live=live, console=console)[0])
    return verdicts


def recover_runs(run_dir: Path | None, runs_root: Path) -> list[str]:
    """Replay pending undos of one run directory, or of every run under `runs_root` that has one."""
    dirs = [run_dir] if run_dir else sorted(p.parent for p in runs_root.glob("*/undo.json"))
    done = []
    for d in dirs:
        info = json.loads((d / "target.json").read_text())
        if info.get("kind") == "ssh":
            target = resolve_target(None, "ssh", info["params"])
        else:
            target = resolve_target(f"lab:{info['name']}", state_root=Path(info["state_root"]))
        done += [f"{d.name}: {line}" for line in recover(d, target)]
    return done
