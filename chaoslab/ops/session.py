"""One `chaoslab run`: load the file, pick the target, plan every experiment (the guard rails), then hand
each plan to the executor with a live view, assess it once (measure, judge, gate) and write the reports;
then publish what CI asked for (a combined JUnit file, a pull-request summary, Prometheus metrics). Also
`chaoslab recover`. Called by the CLI; a game day runs its steps through `run_plan` too."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape

from chaoslab.errors import ChaoslabError, SpecError
from chaoslab.execute import rundir
from chaoslab.execute.executor import AbortCheck, execute, revert_pending
from chaoslab.execute.rundir import RunDir, pending_runs
from chaoslab.judge.assess import Assessment, assess
from chaoslab.judge.gate import Gate, Policy, check_names
from chaoslab.judge.verdict import Verdict
from chaoslab.ops.console import live_view, verdict_table
from chaoslab.plan.guard import Settings, load_settings
from chaoslab.plan.planner import Plan, make_plan
from chaoslab.reports import junit, prometheus, summary, write_reports
from chaoslab.spec import load
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target, resolve_target, target_from_description
from chaoslab.timeline import Timeline


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
    assessment: Assessment | None = None


def run_plan(plan: Plan, target: Target, runs_root: Path, *, live: bool, console: Console,
             policy: Policy | None = None, abort_check: AbortCheck | None = None) -> Outcome:
    """Execute the plan (`SpecError` before anything changes if it holds a refusal), then assess it once
    and write the reports. An error that stopped the runs (aborted, target unreachable, revert failed)
    comes back as the Outcome's error, with what the run directory kept. `abort_check` adds an abort
    condition from outside the experiment (a game day's)."""
    policy = policy or Policy()
    experiment = plan.experiment
    plan.refuse()
    run_dir = RunDir.create(runs_root, experiment.name)
    run_dir.write_policy(policy)
    run_dir.write_experiment(experiment)
    run_dir.write_target(target.describe())
    console.print(f"running [bold]{escape(experiment.name)}[/] against {escape(target.name)} → "
                  f"{escape(str(run_dir.path))}", highlight=False)
    with live_view(experiment, target, console, live) as observer:
        record = execute(plan, target, run_dir, [observer], abort_check)
    if record.error:
        return Outcome(experiment, run_dir.path, timelines=record.timelines, finished=time.time(),
                       error=record.error)
    assessment = assess(experiment, record.timelines, target.renewal_window, policy)
    write_reports(run_dir, experiment, assessment, record.timelines)
    console.print(verdict_table(assessment.gate))
    for s in assessment.gate.warnings:
        console.print(f"[yellow]warning:[/] {s.result.metric} {escape(s.note)}", highlight=False)
    console.print(f"reports: {escape(str(run_dir.path))}/report.html, report.md, junit.xml, verdict.json",
                  highlight=False)
    return Outcome(experiment, run_dir.path, assessment.verdict, assessment.gate, record.timelines, time.time(),
                   assessment=assessment)


def plan_file(path: Path, *, target: str | None, runs: int | None, yes: bool,
              settings: Settings | None = None) -> list[tuple[Plan, Target]]:
    """Load the file and make every experiment's plan (targets opened; the caller closes them). Invalid
    input raises SpecError before anything is planned; a target that cannot be reached raises its error."""
    experiments = load(path)
    settings = settings if settings is not None else load_settings()
    plans: list[tuple[Plan, Target]] = []
    try:
        for exp in experiments:
            if runs:
                exp = dataclasses.replace(exp, runs=runs)
            tgt = resolve_target(target, exp.target.kind if exp.target else None,
                                 exp.target.params if exp.target else None)
            plans.append((make_plan(exp, tgt, settings=settings, yes=yes), tgt))
    except BaseException:
        for _, tgt in plans:
            tgt.close()
        raise
    return plans


def print_plan(plan: Plan, target: Target, console: Console) -> None:
    console.print(f"# dry run: nothing is changed. Plan of {plan.name} against {target.name}:", markup=False,
                  highlight=False)
    console.print(yaml.safe_dump(plan.to_json(), sort_keys=False, width=120), markup=False,
                  highlight=False, soft_wrap=True)


def run_file(path: Path, *, target: str | None, runs_root: Path, runs: int | None, live: bool,
             console: Console, policy: Policy | None = None, dry_run: bool = False, yes: bool = False,
             settings: Settings | None = None) -> list[Outcome]:
    """Run every experiment of the file. Invalid input raises SpecError before anything runs. Each
    experiment is planned once (faults built and resolved read-only, guard rails checked), and that plan is
    what `dry_run` prints and what the executor runs: a refusal stops the file before anything changes
    (`SpecError`). An experiment that cannot be carried out ends the file: its Outcome carries the error and
    later experiments are not run, since the cluster may be left degraded."""
    policy = policy or Policy()
    experiments = load(path)
    check_names(policy, (s.metric for exp in experiments for s in exp.slos))
    try:
        plans = plan_file(path, target=target, runs=runs, yes=yes or dry_run, settings=settings)
    except SpecError:
        raise
    except ChaoslabError as exc:
        return [Outcome(experiments[0], finished=time.time(), error=f"{type(exc).__name__}: {exc}")]
    outcomes: list[Outcome] = []
    try:
        if dry_run:
            for plan, tgt in plans:
                print_plan(plan, tgt, console)
            refusals = [r for plan, _ in plans for r in plan.refusals]
            if refusals:
                raise SpecError(refusals)
            return []
        for plan, _ in plans:
            plan.refuse()  # every plan checked before the first experiment changes anything
        for plan, tgt in plans:
            outcomes.append(run_plan(plan, tgt, runs_root, live=live, console=console, policy=policy))
            if outcomes[-1].error:
                break
    finally:
        for _, tgt in plans:
            tgt.close()
    return outcomes


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
    return str(outcome.run_dir / rundir.HTML)


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
        docs = [junit.render(o.experiment, o.assessment.verdict, o.assessment.measurements, o.assessment.gate)
                for o in outcomes if o.assessment is not None]
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
    dirs = [RunDir(run_dir)] if run_dir else pending_runs(runs_root)
    done = []
    for d in dirs:
        target = target_from_description(d.target())
        try:
            done += [f"{d.name}: {line}" for line in revert_pending(target, d)]
        finally:
            target.close()
    return done
