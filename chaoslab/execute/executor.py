"""The executor: the one place that acts on a cluster for an experiment, whoever started it (`chaoslab run`,
a game-day step, the Chaos Toolkit control and actions). Its input is a `Plan`; a plan with a refusal is
refused before anything changes.

Before the first run, the objects of `spec.workload` that are not there yet are created and awaited
(`chaoslab.execute.workload`; deleted after the last run). For each of the experiment's runs: start the
probes, wait for the steady state (abort if it does not hold), bind the planned faults to the cluster as
it is now (who leads), check the binding against the blast radius, write the undo to the run directory,
inject, hold for `duration` (aborting early when an abort condition is crossed), revert, and keep observing until the steady state has held for the settle
period (or `recovery_timeout`), judged as the measurement will judge it (`chaoslab.judge.steady`: one
decision, recorded in the timeline). Each run's timeline is saved; measuring, judging and reporting happen
after, from those timelines (`chaoslab.judge`, `chaoslab.reports`).

Safety: the undo is on disk before the first fault is injected; Ctrl-C, an exception or an abort reverts
at once; a run killed outright leaves `undo.json` behind for `chaoslab recover`. One run per target at a
time (an exclusive lock on the target's lock file).

Observers (the live view, progress lines, a game day's console) get a `Progress` at every step; they
never change the run.

    >>> plan = make_plan(experiment, target, settings=load_settings(), yes=False)    # doctest: +SKIP
    >>> record = execute(plan, target, RunDir.create(Path("runs"), plan.name))      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaoslab.errors import ChaoslabError, InjectionError, RevertError, SpecError, TargetError
from chaoslab.execute.rundir import RunDir
from chaoslab.execute.workload import deploy, remove
from chaoslab.faults.base import Injection, Record, Undo, apply_undo, ignore_events
from chaoslab.judge.conditions import Samples, failing_conditions, live_value
from chaoslab.judge.steady import is_over
from chaoslab.plan.guard import radius_problems
from chaoslab.plan.planner import Plan, etcd_members
from chaoslab.probes import ProbeGroup
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target
from chaoslab.timeline import Timeline

#: Seconds to wait for the steady state before injecting; the run aborts when it does not hold by then.
STEADY_STATE_TIMEOUT = 60.0
TICK = 0.25
FIRST_SAMPLES = 1.0
"""Seconds the probes get for their first samples (and the Lease watch for its first list)."""
STEADY_HOLD = 1.0
"""Seconds the steady state must hold before injecting."""


class RunAborted(ChaoslabError):
    """The run stopped before it could be judged (steady state not met, abort condition, interrupt)."""


@dataclass
class Progress:
    """What observers see: the live view renders it, progress lines print its phase."""

    run: int = 0
    runs: int = 1
    phase: str = "starting"
    elapsed: float = 0.0
    failing: list[str] = field(default_factory=list)
    timeline: Timeline | None = None


Observer = Callable[[Progress], None]
AbortCheck = Callable[[Timeline], "str | None"]


@dataclass
class RunRecord:
    """What an execution left: the plan it ran, where, each run's timeline, and the error that stopped it
    ("" when every run completed)."""

    plan: Plan
    run_dir: RunDir
    timelines: list[Timeline]
    error: str = ""
    bindings: list[list[dict[str, Any]]] = field(default_factory=list)
    """Each run's faults as bound at injection (targets, role, undo)."""


@contextlib.contextmanager
def run_lock(target: Target, run_dir: RunDir) -> Iterator[None]:
    """Hold the target's run lock; refuse clearly when another run holds it."""
    target.lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(target.lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise TargetError(f"another run is active against {target.name} ({holder}); wait for it to "
                              f"finish, or stop it (Ctrl-C reverts its faults)") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, run directory {run_dir.path}")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()


# ---- injecting and reverting: the undo on disk first ---------------------------------------------------
def bind(plan: Plan, target: Target, record: Record | None = None) -> list[Injection]:
    """The planned faults bound to the cluster as it is now, checked against the blast radius again (the
    leader may have moved since the plan was made). `InjectionError` when the binding exceeds it."""
    bound = [fp.fault.resolve(target, i) for i, fp in enumerate(plan.faults)]
    if problems := radius_problems(plan.experiment, bound, etcd_members(target, bound), target):
        if record is not None:
            record("refused", problems=problems)
        raise InjectionError("; ".join(problems) + "; nothing was injected")
    return bound


def inject(plan: Plan, target: Target, bound: Sequence[Injection], pending: RunDir,
           record: Record, injected: list[Injection]) -> None:
    """Write the undo of every bound fault, then inject them in order. `injected` grows as each goes in,
    so the caller reverts exactly what was done if this raises (or is interrupted)."""
    pending.write_pending([b.to_json() for b in bound])
    for fp, inj in zip(plan.faults, bound):
        record("inject", fault=inj.fault, index=inj.index, targets=list(inj.targets), component=inj.component,
               role=inj.role)
        injected.append(inj)
        fp.fault.inject(target, inj, record=record)


def revert(target: Target, injections: Sequence[Injection], pending: RunDir, record: Record) -> None:
    """Undo `injections` in reverse order, every step tried; `RevertError` with what is still broken (the
    pending undo stays on disk for `chaoslab recover`), else the pending undo is cleared."""
    errors = []
    for inj in reversed(injections):
        error = None
        for undo in inj.undo:
            try:
                apply_undo(target, undo, record=record)
            except ChaoslabError as exc:
                error = str(exc)
                errors.append(error)
        record("revert", fault=inj.fault, index=inj.index, ok=error is None, error=error)
    if errors:
        raise RevertError("; ".join(errors) + f" (pending undo kept in {pending / 'undo.json'})")
    pending.write_pending([])


def check_workload(plan: Plan, target: Target) -> None:
    """`RunAborted` (could not run: exit 3) when an SLO judges a workload and none runs where it is looked
    for: such a run could only end with those SLOs "not measured", which is no verdict on the cluster."""
    need = plan.workload
    if not need:
        return
    query = {"labelSelector": need["selector"]} if need.get("selector") else {}
    for ns in need["namespaces"]:
        path = "/api/v1/pods" if ns == "*" else f"/api/v1/namespaces/{ns}/pods"
        if target.api().get(path, **query).get("items"):
            return
    where = ", ".join(need["namespaces"]) + (f" (selector {need['selector']})" if need.get("selector") else "")
    raise RunAborted(f"could not run: the SLOs {', '.join(need['slos'])} judge a workload, and no pod runs in "
                     f"{where}; deploy the workload first (experiments/manifests/ has the shipped ones), or "
                     f"drop those SLOs; nothing was injected")


def revert_pending(target: Target, pending: RunDir, record: Record = ignore_events) -> list[str]:
    """Replay the pending undo of a run that did not finish (`chaoslab recover`, a Chaos Toolkit rollback);
    returns what was done. The pending undo is cleared only when every step worked."""
    done, errors = [], []
    for inj in pending.pending():
        for u in inj["undo"]:
            undo = Undo.from_json(u)
            try:
                apply_undo(target, undo, record=record)
                done.append(f"{inj['fault']} #{inj['index']}: {undo.action} {dict(undo.params)}")
            except ChaoslabError as exc:
                errors.append(str(exc))
    if errors:
        raise RevertError("; ".join(errors) + f" (pending undo kept in {pending / 'undo.json'})")
    pending.clear_pending()
    return done


# ---- observing: probes and the steady state ------------------------------------------------------------
class Observation:
    """Probes sampling into one timeline, and the steady-state checks over it (the executor's runs and the
    Chaos Toolkit control, which lets Chaos Toolkit inject, share it)."""

    def __init__(self, plan: Plan, target: Target, timeline: Timeline | None = None) -> None:
        self.plan = plan
        self.target = target
        self.timeline = timeline or Timeline.start()
        self.group: ProbeGroup | None = None

    @property
    def experiment(self) -> Experiment:
        return self.plan.experiment

    def start(self) -> None:
        self.group = ProbeGroup.start(self.plan.probes, self.target, self.timeline)

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()
            self.group = None

    def failing(self) -> list[str]:
        return failing_conditions(self.timeline, self.experiment.steady_state, self.timeline.now(),
                                  self.target.renewal_window)

    def settled(self) -> float:
        """Up to when the timeline is final: no sample from before it can still arrive."""
        now = self.timeline.now()
        return self.group.settled_until(now) if self.group is not None else now

    def wait_steady(self, hold: float, timeout: float, since: float = 0.0,
                    tick: Callable[[list[str]], None] = lambda _: None) -> float | None:
        """The instant by which the steady state had held for `hold` seconds, none of them before `since`,
        judged on the final part of the timeline (`chaoslab.judge.steady.is_over`, the rule the
        measurement keeps); None after `timeout`."""
        exp = self.experiment
        deadline = self.timeline.now() + timeout
        while True:
            end = self.settled()
            if is_over(Samples(self.timeline, until=end), exp.steady_state, hold, since, end,
                       self.target.renewal_window):
                return end
            if self.timeline.now() >= deadline:
                return None
            tick(self.failing())
            time.sleep(TICK)

    def end_run(self, since: float, tick: Callable[[list[str]], None] = lambda _: None) -> bool:
        """After the revert: wait until the steady state has held for the settle period from `since` on (or
        `recovery_timeout`), and record the decision as the `steady-state` event of phase `after`, at the
        instant it was taken: the measurement judges the steady state up to there
        (`chaoslab.judge.steady.judged_end`)."""
        exp = self.experiment
        over = self.wait_steady(exp.settle, exp.recovery_timeout, since, tick)
        self.timeline.event("steady-state", t=over if over is not None else self.settled(), phase="after",
                            ok=over is not None, failing=[] if over is not None else self.failing())
        return over is not None

    def abort_reason(self, extra: AbortCheck | None = None) -> str | None:
        for metric, threshold in self.experiment.abort.items():
            value = live_value(self.timeline, metric)
            if value is not None and value > threshold:
                return f"abort condition {metric} > {threshold:g} (now {value:.1f})"
        return extra(self.timeline) if extra else None


# ---- one execution -------------------------------------------------------------------------------------
class Execution:
    def __init__(self, plan: Plan, target: Target, run_dir: RunDir, observers: Sequence[Observer] = (),
                 abort_check: AbortCheck | None = None) -> None:
        self.plan = plan
        self.target = target
        self.run_dir = run_dir
        self.observers = list(observers)
        self.abort_check = abort_check
        """An abort condition from outside the experiment (a game day's, over the whole day): a reason to
        abort now, or None. Checked with the experiment's own while the fault holds."""
        self.progress = Progress(runs=plan.experiment.runs)
        self.bindings: list[list[dict[str, Any]]] = []
        self.created: list[str] | None = None
        """The objects of `spec.workload` this execution created (None: not deployed yet)."""

    def _show(self, timeline: Timeline, phase: str | None = None, failing: list[str] | None = None) -> None:
        if phase:
            self.progress.phase = phase
        if failing is not None:
            self.progress.failing = failing
        self.progress.elapsed = timeline.now()
        self.progress.timeline = timeline
        for observer in self.observers:
            observer(self.progress)

    def end_workload(self) -> None:
        """After the last run: delete the objects of `spec.workload` this execution created, unless told
        to keep them."""
        workload = self.plan.experiment.workload
        if self.created is None or workload is None:
            return
        if workload.keep:
            self.run_dir.write_standing([])
        else:
            remove(self.target, self.created, self.run_dir, ignore_events)
        self.created = None

    def run_once(self, index: int) -> Timeline:
        exp = self.plan.experiment
        obs = Observation(self.plan, self.target)
        timeline = obs.timeline
        self.progress.run = index
        timeline.event("run-start", experiment=exp.name, run=index)
        injected: list[Injection] = []
        try:
            if exp.workload is not None and self.created is None:
                self.created = deploy(exp.workload, self.target, self.run_dir, timeline.event)
            check_workload(self.plan, self.target)
            obs.start()
            time.sleep(FIRST_SAMPLES)
            if obs.wait_steady(STEADY_HOLD, STEADY_STATE_TIMEOUT, tick=lambda f: self._show(timeline, "steady state", f)) is None:
                failing = obs.failing()
                timeline.event("steady-state", phase="before", ok=False, failing=failing)
                raise RunAborted(f"steady state not met before injection: {', '.join(failing)} "
                                 f"(waited {STEADY_STATE_TIMEOUT:.0f} s); nothing was injected")
            timeline.event("steady-state", phase="before", ok=True, failing=[])
            self._show(timeline, "injecting", [])
            bound = bind(self.plan, self.target, timeline.event)
            self.bindings.append([b.to_json() for b in bound])
            self.run_dir.write_plan({**self.plan.to_json(), "runs": self.bindings})
            inject(self.plan, self.target, bound, self.run_dir, timeline.event, injected)
            end = timeline.now() + exp.duration
            while timeline.now() < end:
                if reason := obs.abort_reason(self.abort_check):
                    timeline.event("abort", reason=reason)
                    raise RunAborted(reason)
                self._show(timeline, "fault holds", obs.failing())
                time.sleep(TICK)
            done, injected = injected, []
            revert(self.target, done, self.run_dir, timeline.event)
            obs.end_run(timeline.now(), lambda f: self._show(timeline, "recovering", f))
        except KeyboardInterrupt:
            timeline.event("abort", reason="interrupted (Ctrl-C)")
            raise
        finally:
            try:
                if injected:
                    revert(self.target, injected, self.run_dir, timeline.event)
            finally:
                timeline.event("run-end")
                obs.stop()
                self.run_dir.save_timeline(index, timeline)
                self._show(timeline, "run ended")
        return timeline


def execute(plan: Plan, target: Target, run_dir: RunDir, observers: Sequence[Observer] = (),
            abort_check: AbortCheck | None = None) -> RunRecord:
    """Carry out `plan` against `target`: every run of the experiment, as the module docstring says.
    `SpecError` before anything changes when the plan holds a refusal. An error that stops the runs
    (aborted, target unreachable, revert failed) comes back as the record's `error`, with the timelines
    saved so far; Ctrl-C reverts and propagates."""
    plan.refuse()
    run_dir.write_plan(plan.to_json())
    execution = Execution(plan, target, run_dir, observers, abort_check)
    timelines: list[Timeline] = []
    try:
        with run_lock(target, run_dir):
            try:
                for i in range(1, plan.experiment.runs + 1):
                    timelines.append(execution.run_once(i))
            except BaseException as exc:
                try:
                    execution.end_workload()
                except ChaoslabError as cleanup:
                    if isinstance(exc, ChaoslabError) and not isinstance(exc, SpecError):
                        raise RevertError(f"{exc}; and the workload could not be removed: {cleanup}") from exc
                    exc.add_note(f"and the workload could not be removed: {cleanup}")
                raise
            execution.end_workload()
    except SpecError:
        raise
    except ChaoslabError as exc:
        return RunRecord(plan, run_dir, run_dir.timelines(skip_unreadable=True), f"{type(exc).__name__}: {exc}",
                         execution.bindings)
    return RunRecord(plan, run_dir, timelines, "", execution.bindings)
