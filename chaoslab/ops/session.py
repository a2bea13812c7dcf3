"""One `chaoslab run`: load the file, pick the target, make the run directory, run every experiment with
a live view, then measure, judge, gate and write the reports; then publish what CI asked for (a combined
JUnit file, a pull-request summary, Prometheus metrics). Also `chaoslab recover`. Called by the CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from chaoslab.errors import ChaoslabError, SpecError
from chaoslab.execute.runner import Runner, RunView, new_run_dir, recover
from chaoslab.judge.gate import Gate, Policy, check_names, evaluate
from chaoslab.judge.measure import measure
from chaoslab.judge.verdict import Verdict, format_value, judge
from chaoslab.plan.guard import Settings, load_settings
from chaoslab.plan.planner import make_plan
from chaoslab.plan.probes import probes_for
from chaoslab.reports import experiment_to_json, junit, prometheus, summary, write_reports
from chaoslab.spec import load
from chaoslab.spec.model import METRICS, Experiment
from chaoslab.targets import Target, close_target, describe, resolve_target, target_from_description
from chaoslab.timeline import Timeline


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


STATUS_STYLE = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "warn": "[yellow]pass, warning[/]",
                "ignored": "[yellow]FAIL, not gating[/]"}


def verdict_table(gate: Gate) -> Table:
    from chaoslab.reports.markdown import headline

    table = Table(title=f"verdict: {headline(gate)}")
    for col in ("SLO", "target", "measured", "result"):
        table.add_column(col)
    for s in gate.slos:
        r = s.result
        table.add_row(r.metric, r.target, format_value(r.measured, r.unit), STATUS_STYLE[s.status])
    return table


@dataclass(frozen=True)
class Outcome:
    """One experiment of a `chaoslab run`: judged (verdict and gate), or the error that stopped it."""

    experiment: Experiment
    run_dir: Path | None = None
    verdict: Verdict | None = None
    gate: Gate | None = None
    timelines: list[Timeline] = field(default_factory=list)
    finished: float = 0.0
    error: str = ""


def _execute(experiment: Experiment, target: Target, run_dir: Path, *, live: bool,
             console: Console, abort_check: Callable[[Timeline], str | None] | None = None) -> list[Timeline]:
    if live and console.is_terminal:
        slos = LiveSlos(experiment, target.renewal_window)
        with Live(render(RunView(), experiment), console=console, refresh_per_second=4) as screen:
            runner = Runner(experiment, target, run_dir, probes_for(experiment),
                            on_update=lambda v: screen.update(render(v, experiment, slos)),
                            abort_check=abort_check)
            return runner.run()
    last = [""]

    def plain(view: RunView) -> None:
        if view.phase != last[0]:
            console.print(f"  run {view.run}/{view.runs}: {view.phase} (t={view.elapsed:.1f} s)")
            last[0] = view.phase

    return Runner(experiment, target, run_dir, probes_for(experiment), on_update=plain,
                  abort_check=abort_check).run()


def run_experiment(experiment: Experiment, target: Target, runs_root: Path, *, live: bool,
                   console: Console, policy: Policy | None = None,
                   abort_check: Callable[[Timeline], str | None] | None = None) -> Outcome:
    """Run, measure, judge, gate and report one experiment. A ChaoslabError that stops it (aborted, target
    unreachable, revert failed) comes back as the Outcome's error, with what the run directory kept.
    `abort_check` adds an abort condition from outside the experiment (a game day's)."""
    policy = policy or Policy()
    run_dir = new_run_dir(runs_root, experiment)
    policy.save(run_dir)
    (run_dir / "experiment.json").write_text(json.dumps(experiment_to_json(experiment), indent=1))
    (run_dir / "target.json").write_text(json.dumps(describe(target), indent=1))
    if experiment.source and experiment.source.exists():
        shutil.copy(experiment.source, run_dir / "experiment.yaml")
    console.print(f"running [bold]{experiment.name}[/] against {target.name} → {run_dir}")
    try:
        timelines = _execute(experiment, target, run_dir, live=live, console=console, abort_check=abort_check)
    except SpecError:
        raise
    except ChaoslabError as exc:
        return Outcome(experiment, run_dir, timelines=_saved_timelines(run_dir), finished=time.time(),
                       error=f"{type(exc).__name__}: {exc}")
    measurements = [measure(tl, experiment.steady_state, experiment.settle, target.renewal_window)
                    for tl in timelines]
    verdict = judge(experiment, measurements)
    gate = evaluate(verdict, policy)
    write_reports(run_dir, experiment, verdict, timelines, measurements, policy)
    console.print(verdict_table(gate))
    for s in gate.warnings:
        console.print(f"[yellow]warning:[/] {s.result.metric} {s.note}", highlight=False)
    console.print(f"reports: {run_dir}/report.html, report.md, junit.xml, verdict.json")
    return Outcome(experiment, run_dir, verdict, gate, timelines, time.time())


def run_file(path: Path, *, target: str | None, runs_root: Path, runs: int | None, live: bool,
             console: Console, policy: Policy | None = None, dry_run: bool = False, yes: bool = False,
             settings: Settings | None = None) -> list[Outcome]:
    """Run every experiment of the file. Invalid input raises SpecError before anything runs. Each
    experiment is planned first (faults resolved read-only, guard rails checked): a refusal stops it before
    anything changes (`SpecError`); `dry_run` prints the plans and runs nothing. An experiment that cannot
    be carried out ends the file: its Outcome carries the error and later experiments are not run, since
    the cluster may be left degraded."""
    policy = policy or Policy()
    experiments = load(path)
    check_names(policy, (s.metric for exp in experiments for s in exp.slos))
    settings = settings if settings is not None else load_settings()
    outcomes = []
    for exp in experiments:
        if runs:
            exp = dataclasses.replace(exp, runs=runs)
        try:
            tgt = resolve_target(target, exp.target.kind if exp.target else None,
                                 exp.target.params if exp.target else None)
        except SpecError:
            raise
        except ChaoslabError as exc:
            outcomes.append(Outcome(exp, finished=time.time(), error=f"{type(exc).__name__}: {exc}"))
            break
        try:
            plan = make_plan(exp, tgt, probes_for(exp), settings=settings, yes=yes or dry_run)
            if dry_run:
                console.print(f"# dry run: nothing is changed. Plan of {exp.name} against {tgt.name}:")
                console.print(yaml.safe_dump(plan.to_json(), sort_keys=False, width=120), markup=False,
                              highlight=False, soft_wrap=True)
                if plan.refusals:
                    raise SpecError(plan.refusals)
                continue
            if plan.refusals:
                raise SpecError([*plan.refusals,
                                 "nothing was changed; `chaoslab run --dry-run` shows the whole plan"])
            outcomes.append(run_experiment(exp, tgt, runs_root, live=live, console=console, policy=policy))
        finally:
            close_target(tgt)
        if outcomes[-1].error:
            break
    return outcomes


def _saved_timelines(run_dir: Path) -> list[Timeline]:
    """The timelines an interrupted run saved (for its fault windows)."""
    out = []
    for f in sorted((run_dir / "runs").glob("*/timeline.jsonl")):
        try:
            out.append(Timeline.load(f))
        except (ValueError, KeyError, OSError):
            continue
    return out


@dataclass(frozen=True)
class Publish:
    """What `chaoslab run` writes besides the run directories (each None: not asked for)."""

    junit: Path | None = None
    summary: Path | None = None
    report_url: str | None = None
    """Link for the summary: `{run}` is replaced by the run directory's name; default the report's path."""
    metrics_file: Path | None = None
    pushgateway: str | None = None
    job: str = "chaoslab"


def report_link(outcome: Outcome, report_url: str | None) -> str:
    if outcome.run_dir is None:
        return ""
    if report_url:
        return report_url.replace("{run}", outcome.run_dir.name)
    return str(outcome.run_dir / "report.html")


def publish(outcomes: Sequence[Outcome], exit_code: int, how: Publish) -> tuple[list[Path], list[str]]:
    """Write the combined JUnit file, the summary and the metrics; returns (files written, problems).
    A problem here never changes the exit code: the verdict is already in the run directories."""
    written: list[Path] = []
    problems: list[str] = []

    def write(path: Path, text: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
        except OSError as exc:
            problems.append(f"cannot write {path}: {exc}")

    if how.junit:
        docs = [(o.run_dir / "junit.xml").read_text() for o in outcomes if o.verdict and o.run_dir]
        write(how.junit, junit.merge(docs, [(o.experiment.name, o.error) for o in outcomes if o.error]))
    if how.summary:
        entries = [summary.Entry(o.experiment.name, o.verdict, o.gate, report_link(o, how.report_url), o.error)
                   for o in outcomes]
        write(how.summary, summary.render(entries, exit_code))
    results = [prometheus.Result(o.experiment.name, o.verdict, o.gate, o.timelines, o.finished, o.error)
               for o in outcomes]
    if how.metrics_file:
        try:
            written.append(prometheus.write_textfile(how.metrics_file, results))
        except OSError as exc:
            problems.append(f"cannot write {how.metrics_file}: {exc}")
    if how.pushgateway:
        try:
            prometheus.push(how.pushgateway, how.job, results)
        except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
            problems.append(f"cannot push to the Pushgateway {how.pushgateway} (job {how.job}): {exc}")
    return written, problems


def recover_runs(run_dir: Path | None, runs_root: Path) -> list[str]:
    """Replay pending undos of one run directory, or of every run under `runs_root` that has one."""
    dirs = [run_dir] if run_dir else sorted(p.parent for p in runs_root.glob("*/undo.json"))
    done = []
    for d in dirs:
        info = json.loads((d / "target.json").read_text())
        target = target_from_description(info)
        try:
            done += [f"{d.name}: {line}" for line in recover(d, target)]
        finally:
            close_target(target)
    return done
