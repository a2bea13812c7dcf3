"""The runner: the only part of chaoslab that acts on a cluster during an experiment.

For each of the experiment's runs: start the probes, check the steady state (abort if it does not hold),
resolve the faults against the cluster as it is now, write their undo to the run directory, inject, hold
for `duration` (aborting early when an abort condition is crossed), revert, and keep observing until the
steady state is back for the settle period (or `recovery_timeout`). Each run's timeline is saved; the
verdict and reports are computed from those files only.

Safety: the undo is on disk before the first signal is sent; Ctrl-C, an exception or an abort reverts at
once; a run killed outright leaves `undo.json` behind for `chaoslab recover`. One run per target at a time
(an exclusive lock on the target's lock file).

Run directory:

    runs/<UTC time>-<experiment>/
      experiment.json     the loaded experiment        target.json   how to reach the target again
      plan.json           faults as resolved, per run  undo.json     pending undo (only while pending)
      runs/<n>/timeline.jsonl                          verdict.json junit.xml report.md report.html
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslab.errors import ChaoslabError, InjectionError, TargetError
from chaoslab.faults import build
from chaoslab.faults.base import Injection, Undo, apply_undo
from chaoslab.judge.conditions import failing_conditions, live_value
from chaoslab.plan.guard import radius_problems
from chaoslab.probes import ProbeGroup
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target
from chaoslab.timeline import Timeline

#: Seconds to wait for the steady state before injecting; the run aborts when it does not hold by then.
STEADY_STATE_TIMEOUT = 60.0
TICK = 0.25


class RunAborted(ChaoslabError):
    """The run stopped before it could be judged (steady state not met, abort condition, interrupt)."""


@dataclass
class RunView:
    """What the live terminal view shows; the runner updates it, the CLI renders it."""

    run: int = 0
    runs: int = 1
    phase: str = "starting"
    elapsed: float = 0.0
    leaders: dict[str, str | None] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)
    timeline: Timeline | None = None


def new_run_dir(root: Path, experiment: Experiment) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = root / f"{stamp}-{experiment.name}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{experiment.name}-{n}"
    path.mkdir(parents=True)
    return path


@contextlib.contextmanager
def run_lock(target: Target, run_dir: Path) -> Iterator[None]:
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
        f.write(f"pid {os.getpid()}, run directory {run_dir}")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


class Runner:
    def __init__(self, experiment: Experiment, target: Target, run_dir: Path, probes: list[dict[str, Any]],
                 on_update: Callable[[RunView], None] = lambda _: None,
                 abort_check: Callable[[Timeline], str | None] | None = None) -> None:
        self.experiment = experiment
        self.abort_check = abort_check
        """An abort condition from outside the experiment (a game day's, over the whole day): a reason
        to abort now, or None. Checked with the experiment's own while the fault holds."""
        self.target = target
        self.run_dir = run_dir
        self.probes = probes
        self.view = RunView(runs=experiment.runs)
        self.on_update = on_update
        self.faults = [build(f.kind, f.params, f.where, experiment.duration) for f in experiment.faults]
        self.plan: list[list[dict[str, Any]]] = []

    # ---- undo bookkeeping -------------------------------------------------------------------------
    @property
    def undo_file(self) -> Path:
        return self.run_dir / "undo.json"

    def _pending(self, injections: list[Injection]) -> None:
        if injections:
            _write_json(self.undo_file, [i.to_json() for i in injections])
        else:
            self.undo_file.unlink(missing_ok=True)

    def _revert(self, timeline: Timeline, injections: list[Injection]) -> None:
        errors = []
        for inj in reversed(injections):
            error = None
            for undo in inj.undo:
                try:
                    apply_undo(self.target, undo, record=timeline.event)
                except ChaoslabError as exc:
                    error = str(exc)
                    errors.append(error)
            timeline.event("revert", fault=inj.fault, index=inj.index, ok=error is None, error=error)
        if errors:
            from chaoslab.errors import RevertError

            raise RevertError("; ".join(errors))
        self._pending([])

    # ---- live checks --------------------------------------------------------------------------------
    def _update(self, timeline: Timeline, phase: str | None = None) -> None:
        if phase:
            self.view.phase = phase
        self.view.elapsed = timeline.now()
        self.view.timeline = timeline
        self.on_update(self.view)

    def _failing(self, timeline: Timeline) -> list[str]:
        return failing_conditions(timeline, self.experiment.steady_state, timeline.now(),
                                  self.target.renewal_window)

    def _wait_steady(self, timeline: Timeline, hold: float, timeout: float, phase: str) -> bool:
        """True once the steady state has held for `hold` seconds; False after `timeout`."""
        deadline = timeline.now() + timeout
        since: float | None = None
        while timeline.now() < deadline:
            failing = self._failing(timeline)
            self.view.failing = failing
            now = timeline.now()
            since = (since if since is not None else now) if not failing else None
            if since is not None and now - since >= hold:
                return True
            self._update(timeline, phase)
            time.sleep(TICK)
        return False

    def _abort_reason(self, timeline: Timeline) -> str | None:
        for metric, threshold in self.experiment.abort.items():
            value = live_value(timeline, metric)
            if value is not None and value > threshold:
                return f"abort condition {metric} > {threshold:g} (now {value:.1f})"
        return self.abort_check(timeline) if self.abort_check else None

    # ---- one run ------------------------------------------------------------------------------------
    def run_once(self, index: int) -> Timeline:
        exp = self.experiment
        timeline = Timeline.start()
        self.view.run = index
        timeline.event("run-start", experiment=exp.name, run=index)
        group = ProbeGroup.start(self.probes, self.target, timeline)
        injections: list[Injection] = []
        try:
            # Probes need a moment for their first samples (and the lease watch for its first list).
            time.sleep(1.0)
            if not self._wait_steady(timeline, hold=1.0, timeout=STEADY_STATE_TIMEOUT, phase="steady state"):
                failing = self._failing(timeline)
                timeline.event("steady-state", phase="before", ok=False, failing=failing)
                raise RunAborted(f"steady state not met before injection: {', '.join(failing)} "
                                 f"(waited {STEADY_STATE_TIMEOUT:.0f} s); nothing was injected")
            timeline.event("steady-state", phase="before", ok=True, failing=[])
            # Resolve every fault first, then write all undos, then inject: the disk knows before the cluster.
            resolved = [f.resolve(self.target, i) for i, f in enumerate(self.faults)]
            members = len(self.target.hosts("etcd")) if any(r.component == "etcd" for r in resolved) else 0
            if problems := radius_problems(exp, resolved, members, self.target):
                # The session checked the plan before the run; the cluster may have changed since.
                timeline.event("refused", problems=problems)
                raise InjectionError("; ".join(problems) + "; nothing was injected")
            self.plan.append([r.to_json() for r in resolved])
            _write_json(self.run_dir / "plan.json", self.plan)
            self._pending(resolved)
            for fault, inj in zip(self.faults, resolved):
                timeline.event("inject", fault=inj.fault, index=inj.index, targets=list(inj.targets),
                               component=inj.component, role=inj.role)
                injections.append(inj)
                if "record" in inspect.signature(fault.inject).parameters:
                    # Faults that report what they did as they go (drain-node: each eviction) get the timeline.
                    fault.inject(self.target, inj, record=timeline.event)  # type: ignore[call-arg]
                else:
                    fault.inject(self.target, inj)
            end = timeline.now() + exp.duration
            while timeline.now() < end:
                if reason := self._abort_reason(timeline):
                    timeline.event("abort", reason=reason)
                    raise RunAborted(reason)
                self._update(timeline, "fault holds")
                time.sleep(TICK)
            self._revert(timeline, injections)
            injections = []
            recovered = self._wait_steady(timeline, hold=exp.settle, timeout=exp.recovery_timeout,
                                          phase="recovering")
            timeline.event("steady-state", phase="after", ok=recovered, failing=self._failing(timeline))
        except KeyboardInterrupt:
            timeline.event("abort", reason="interrupted (Ctrl-C)")
            raise
        finally:
            try:
                if injections:
                    self._revert(timeline, injections)
            finally:
                timeline.event("run-end")
                group.stop()
                out = self.run_dir / "runs" / str(index)
                out.mkdir(parents=True, exist_ok=True)
                timeline.save(out / "timeline.jsonl")
        return timeline

    def run(self) -> list[Timeline]:
        with run_lock(self.target, self.run_dir):
            return [self.run_once(i) for i in range(1, self.experiment.runs + 1)]


def recover(run_dir: Path, target: Target) -> list[str]:
    """Replay the pending undo of a run that did not finish; returns what was done."""
    path = run_dir / "undo.json"
    if not path.exists():
        return []
    done = []
    for inj in json.loads(path.read_text()):
        for u in inj["undo"]:
            undo = Undo.from_json(u)
            apply_undo(target, undo)
            done.append(f"{inj['fault']} #{inj['index']}: {undo.action} {dict(undo.params)}")
    path.unlink()
    return done
