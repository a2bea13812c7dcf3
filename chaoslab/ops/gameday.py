"""One `chaoslab gameday run`: check the time window, make the day's directory, then run the steps in order
— pausing between them, asking for confirmation where a step wants it, skipping the dependents of a step
that did not pass, stopping the day when its abort conditions are crossed (live, and after every
experiment) or when an experiment cannot be carried out — and write the combined report. Each experiment
runs exactly as under `chaoslab run` (`run_plan`: the executor, live view, run directory, reports);
every step's plan is made, and its guard rails checked, before the first step runs. Called by the
CLI; the notifications are sent by the CLI afterwards (`chaoslab.ops.notify`).

Day directory:

    runs/<UTC time>-<game day>/
      gameday.yaml   the file as written      gameday.json   the record: steps, verdicts, distributions
      junit.xml      one suite per step       summary.md     report.html (the whole day's timeline)
      experiments/<UTC time>-<experiment>/   each experiment's own run directory
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape

from chaoslab.errors import ChaoslabError, SpecError
from chaoslab.execute.rundir import new_dir
from chaoslab.judge.conditions import live_value, value_until
from chaoslab.judge.gate import Policy
from chaoslab.ops.session import Outcome, run_plan
from chaoslab.plan.guard import Settings, load_settings
from chaoslab.plan.planner import Plan, make_plan
from chaoslab.spec.gameday import GameDay, Step
from chaoslab.spec.window import local, refusal
from chaoslab.targets import Target, resolve_target
from chaoslab.timeline import Timeline

Status = Literal["passed", "failed", "error", "skipped"]
EXIT_OK, EXIT_SLO_VIOLATED, EXIT_COULD_NOT_RUN = 0, 1, 3


def check_window(day: GameDay, now: dt.datetime) -> None:
    """SpecError (exit 2: nothing was run) when the game day's window is closed at `now`."""
    if day.window is None:
        return
    reason = refusal(day.window, now)
    if reason:
        raise SpecError([(f"{day.window.where}: {reason}; to run anyway (a test, a rehearsal) pass --now "
                         "with a time inside the window")])


def confirmation(step: Step, *, yes: bool, interactive: bool,
                 ask: Callable[[str], bool]) -> tuple[bool, str]:
    """Whether the step may run, and what to record. `--yes` confirms (recorded as such); on a terminal a
    person is asked; otherwise the step is skipped — never run unconfirmed."""
    if not step.confirm:
        return True, ""
    if yes:
        return True, "auto-confirmed by --yes"
    if interactive:
        ok = ask(step.confirm)
        return ok, "confirmed at the prompt" if ok else "declined at the prompt"
    return False, "needs confirmation, but there is no terminal and no --yes"


class DayBudget:
    """The day's abort conditions: totals of live metrics over every run so far, plus the run going on."""

    def __init__(self, limits: Mapping[str, float]) -> None:
        self.limits = dict(limits)
        self.spent = {m: 0.0 for m in limits}
        self._live: dict[int, dict[str, float]] = {}

    def totals(self) -> dict[str, float]:
        return {m: self.spent[m] + sum(v.get(m, 0.0) for v in self._live.values()) for m in self.limits}

    def reason(self) -> str | None:
        for m, total in self.totals().items():
            if total > self.limits[m]:
                return (f"game day abort condition {m} > {self.limits[m]:g} s over the day "
                        f"(now {total:.1f} s)")
        return None

    def check(self, timeline: Timeline) -> str | None:
        """For `execute(abort_check=…)`: the running timeline's values count towards the day."""
        self._live[id(timeline)] = {m: live_value(timeline, m) or 0.0 for m in self.limits}
        return self.reason()

    def add(self, timelines: Sequence[Timeline]) -> None:
        """An experiment ended: its runs' final values join the day's totals."""
        self._live.clear()
        for tl in timelines:
            for m in self.limits:
                self.spent[m] += value_until(tl, m, tl.end) or 0.0


@dataclass
class StepRecord:
    name: str
    experiment: str
    status: Status = "skipped"
    reason: str = ""
    """Why it was skipped, or the error that stopped it."""
    confirmation: str = ""
    run_dir: str | None = None
    """Relative to the day directory."""
    started: float | None = None
    finished: float | None = None
    after: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "experiment": self.experiment, "status": self.status, "reason": self.reason,
                "confirmation": self.confirmation, "runDir": self.run_dir, "started": self.started,
                "finished": self.finished, "after": self.after}


@dataclass
class DayOutcome:
    day: GameDay
    day_dir: Path
    steps: list[StepRecord]
    started: float
    finished: float
    stopped: str = ""
    """Why the day stopped early ("" when every step got its turn)."""
    totals: dict[str, float] = field(default_factory=dict)
    now: str = ""
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return day_exit_code([s.status for s in self.steps], self.stopped)

    def record(self, target: str) -> dict[str, Any]:
        d = self.day
        return {"name": d.name, "description": d.description, "source": str(d.source) if d.source else None,
                "target": target, "window": d.window.describe() if d.window else None, "now": self.now,
                "started": self.started, "finished": self.finished, "stopped": self.stopped or None,
                "abort": dict(d.abort), "totals": self.totals, "exitCode": self.exit_code,
                "steps": [s.to_json() for s in self.steps]}


def day_exit_code(statuses: Sequence[str], stopped: str) -> int:
    """As `chaoslab run`: 3 when an experiment could not be carried out or the day was stopped (abort), else
    1 when one failed an SLO, else 0. Steps skipped for want of confirmation do not change it."""
    if stopped or "error" in statuses:
        return EXIT_COULD_NOT_RUN
    return EXIT_SLO_VIOLATED if "failed" in statuses else EXIT_OK


def plan_day(day: GameDay, target: str | None, *, yes: bool, settings: Settings) -> list[tuple[Plan, Target]]:
    """Every step's plan, made before the first step runs, so a refused step 4 stops the day before step 1
    changes anything (`SpecError` with every refusal, each named by its step). Targets are opened once per
    step and closed by the caller."""
    plans: list[tuple[Plan, Target]] = []
    refusals: list[str] = []
    try:
        for step in day.steps:
            exp = step.experiment
            tgt = resolve_target(target, exp.target.kind if exp.target else None,
                                 exp.target.params if exp.target else None)
            plans.append((make_plan(exp, tgt, settings=settings, yes=yes), tgt))
            refusals += [f"step {step.name}: {r}" for r in plans[-1][0].refusals]
        if refusals:
            raise SpecError([*refusals, "nothing was changed: no step of the game day ran"])
    except BaseException:
        for _, tgt in plans:
            tgt.close()
        raise
    return plans


def run_game_day(day: GameDay, *, target: str | None, runs_root: Path, now: dt.datetime, yes: bool,
                 interactive: bool, ask: Callable[[str], bool], live: bool, console: Console,
                 policy: Policy | None = None, sleep: Callable[[float], None] = time.sleep,
                 settings: Settings | None = None) -> DayOutcome:
    """Run the day (the window must be open at `now` and every step's plan free of refusals, else
    SpecError before anything is made) and write its combined report. `yes` confirms steps that ask and
    consents to a target that is not the lab, as `chaoslab run --yes` does."""
    from chaoslab.reports.gameday import write_day_reports

    check_window(day, now)
    plans = plan_day(day, target, yes=yes, settings=settings if settings is not None else load_settings())
    try:
        return _run_day(day, plans, target=target, runs_root=runs_root, now=now, yes=yes, interactive=interactive,
                        ask=ask, live=live, console=console, policy=policy, sleep=sleep,
                        write_day_reports=write_day_reports)
    finally:
        for _, tgt in plans:
            tgt.close()


def _run_day(day: GameDay, plans: list[tuple[Plan, Target]], *, target: str | None, runs_root: Path,
             now: dt.datetime, yes: bool, interactive: bool, ask: Callable[[str], bool], live: bool,
             console: Console, policy: Policy | None, sleep: Callable[[float], None],
             write_day_reports: Callable[[Path], object]) -> DayOutcome:
    day_dir = new_dir(runs_root, day.name)
    if day.source and day.source.exists():
        shutil.copy(day.source, day_dir / "gameday.yaml")
    budget = DayBudget(day.abort)
    records = [StepRecord(s.name, s.experiment.name, after=list(s.after)) for s in day.steps]
    outcome = DayOutcome(day, day_dir, records, time.time(), 0.0,
                         now=(local(day.window, now) if day.window else now).isoformat())
    target_name = target or (f"{day.target.kind}:{day.target.params['name']}" if day.target and
                             "name" in day.target.params else day.target.kind if day.target else "the running lab")
    console.print(f"game day [bold]{escape(day.name)}[/]: {len(day.steps)} steps against {escape(target_name)} → "
                  f"{escape(str(day_dir))}", highlight=False)
    ran_one = False
    stopped_at = ""
    for i, (step, rec, (plan, tgt)) in enumerate(zip(day.steps, records, plans), 1):
        if outcome.stopped:
            rec.reason = f"not run: the day stopped at {stopped_at}"
            continue
        blocked = [r for r in records if r.name in step.after and r.status != "passed"]
        if blocked:
            rec.reason = "skipped: " + "; ".join(f"{r.name} {r.status}" for r in blocked) + \
                         " (it must pass first: after)"
            console.print(f"[yellow]step {i}/{len(day.steps)} {escape(step.name)}: {escape(rec.reason)}[/]", highlight=False)
            continue
        if ran_one and step.pause > 0:
            console.print(f"pausing {step.pause:g} s before {step.name}", markup=False, highlight=False)
            sleep(step.pause)
        ok, rec.confirmation = confirmation(step, yes=yes, interactive=interactive, ask=ask)
        if not ok:
            rec.reason = f"skipped: {rec.confirmation} ({step.confirm!r})"
            console.print(f"[yellow]step {i}/{len(day.steps)} {escape(step.name)}: {escape(rec.reason)}[/]", highlight=False)
            continue
        console.rule(f"step {i}/{len(day.steps)}: {escape(step.name)}")
        rec.started = time.time()
        try:
            result = run_plan(plan, tgt, day_dir / "experiments", live=live, console=console, policy=policy,
                              abort_check=budget.check if budget.limits else None)
        except SpecError:
            raise
        except ChaoslabError as exc:
            result = Outcome(step.experiment, finished=time.time(), error=f"{type(exc).__name__}: {exc}")
        ran_one = True
        outcome.outcomes.append(result)
        rec.finished = time.time()
        rec.run_dir = str(result.run_dir.relative_to(day_dir)) if result.run_dir else None
        budget.add(result.timelines)
        if result.error:
            rec.status, rec.reason = "error", result.error
            outcome.stopped = f"{step.name} could not be carried out: {result.error}"
            stopped_at = step.name
            console.print(f"[red]error:[/] {escape(step.name)}: {escape(str(result.error))}", highlight=False, soft_wrap=True)
        else:
            rec.status = "passed" if result.gate is not None and result.gate.passed else "failed"
        if not outcome.stopped and (reason := budget.reason()):
            outcome.stopped, stopped_at = reason, step.name
            console.print(f"[red]the day stops:[/] {escape(reason)}", highlight=False)
    outcome.finished = time.time()
    outcome.totals = {m: round(v, 3) for m, v in budget.totals().items()}
    (day_dir / "gameday.json").write_text(json.dumps(outcome.record(target_name), indent=1))
    write_day_reports(day_dir)
    return outcome
