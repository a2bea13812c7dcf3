"""The chaoslab control for Chaos Toolkit (`chaoslab.chaostoolkit.control`): records a chaoslab timeline
while `chaos run` plays an experiment, and at the end measures it, judges the SLOs given in the control's
arguments, writes chaoslab's run directory (timeline, verdict.json, junit.xml, report.md, report.html) and
puts the verdict into the journal under `chaoslab`.

    "controls": [{"name": "chaoslab", "provider": {"type": "python",
        "module": "chaoslab.chaostoolkit.control",
        "arguments": {"target": "lab", "steadyState": ["apiserver-ready", "etcd-quorum"],
                      "probes": ["control-plane"], "slo": {"recoveryTime": {"max": "30s"}}}}}]

Arguments use the spellings of a chaoslab experiment's spec (`steadyState`, `probes`, `slo`, `abort`,
`settle`, `recoveryTimeout`), plus `target` (`lab` or `lab:NAME`), `runs_dir` (default `runs`) and `name`.

When chaoslib calls what (one experiment, one session):
- before the experiment: take the target's run lock (one run per target, as `chaoslab run`), make the run
  directory, start the probes. A failure interrupts the experiment before anything is injected.
- before the method: record whether the steady state holds.
- after each activity: a chaoslab injection (`inject_fault` …) is recorded at the instant it was injected,
  a `revert_fault` at the instant it reverted. A method without chaoslab faults counts as injected when it
  starts and reverted when the rollbacks are done, so other extensions' faults get verdicts too.
- `abort` conditions are watched live: crossing one reverts every pending chaoslab fault at once and
  interrupts the experiment at its next activity.
- after the experiment: any chaoslab fault still pending is reverted (chaoslab never leaves a fault behind,
  whatever the rollback strategy), the steady state is awaited for `settle` (up to `recoveryTimeout`), then
  measure, judge, write, and `journal["chaoslab"] = {"passed", "verdict", "runDirectory"}`.

chaoslib calls these functions with the provider arguments as keywords (hence `**arguments`) and swallows
what they raise, except `InterruptExecution`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

from chaoslab.chaostoolkit import actions
from chaoslab.errors import ChaoslabError
from chaoslab.execute.executor import FIRST_SAMPLES, TICK, Observation, run_lock
from chaoslab.execute.rundir import RunDir, write_json
from chaoslab.judge.assess import assess
from chaoslab.judge.gate import Policy
from chaoslab.plan.guard import load_settings
from chaoslab.plan.planner import Plan, make_plan
from chaoslab.reports import write_reports
from chaoslab.spec.chaostoolkit import ACTIONS, control_experiment
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target, resolve_target

SETTLE = 10.0
"""Seconds the session waits at its start for chaoslab's steady state before Chaos Toolkit goes on."""

__all__ = ["after_activity_control", "after_experiment_control", "after_method_control",
           "after_rollback_control", "before_activity_control", "before_experiment_control",
           "before_method_control", "cleanup_control", "configure_control"]


class Session:
    """One `chaos run`, from before the experiment to after it: the only writer of its timeline. Chaos
    Toolkit injects (through chaoslab's actions, which run the executor's inject and revert); the session
    observes with the executor's `Observation` over the plan's probes."""

    def __init__(self, experiment: Experiment, plan: Plan, target: Target, run_dir: RunDir) -> None:
        self.experiment = experiment
        """What is judged: the plan's experiment, with a placeholder fault for other extensions' methods."""
        self.plan = plan
        self.target = target
        self.run_dir = run_dir
        self.stack = contextlib.ExitStack()
        self.observation = Observation(plan, target)
        self.timeline = self.observation.timeline
        self.pending: dict[str, Path] = {}
        """key → pending directory of every chaoslab injection not reverted yet."""
        self.injections = 0
        self.method_start: float | None = None
        self.aborted: str | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()

    def at(self, wall: float) -> float:
        """Timeline time of a wall-clock instant an action reported."""
        return max(0.0, wall - self.timeline.started_wall)

    def failing(self) -> list[str]:
        return self.observation.failing()

    def start(self) -> None:
        self.stack.enter_context(run_lock(self.target, self.run_dir))
        self.timeline.event("run-start", experiment=self.experiment.name, run=1, driver="chaostoolkit")
        self.observation.start()
        if self.experiment.abort:
            threading.Thread(target=self._watch_abort, name="chaoslab-abort", daemon=True).start()
        time.sleep(FIRST_SAMPLES)  # the probes' first samples, before the hypothesis and the method
        # Then the steady state, as a chaoslab run waits for it (a Lease counts once a renewal is seen, up to
        # a retry period); not met by then, the method's start records it as failing.
        self.observation.wait_steady(0.0, SETTLE)

    def revert_all(self, why: str) -> None:
        with self.lock:
            for key, pending in list(self.pending.items()):
                try:
                    reverted = actions.revert_pending_dir(pending)
                    error = None
                except ChaoslabError as exc:
                    reverted, error = [], str(exc)
                for inj in reverted or [{"fault": key, "index": 0}]:
                    self.timeline.event("revert", fault=inj["fault"], index=inj["index"], ok=error is None,
                                        error=error, by=why)
                if error is None:
                    del self.pending[key]

    def _watch_abort(self) -> None:
        while not self.done.wait(TICK):
            if not self.pending or self.aborted:
                continue
            if reason := self.observation.abort_reason():
                self.aborted = reason
                self.timeline.event("abort", reason=reason)
                self.revert_all("abort")

    def recover(self) -> None:
        """After the rollbacks: wait for the steady state to hold for the settle period, as a chaoslab run's
        end does (one decision, which the measurement keeps)."""
        self.observation.end_run(self.timeline.now())

    def finish(self) -> dict[str, Any]:
        """Stop, save, assess once, write the reports; the journal's `chaoslab` entry."""
        self.timeline.event("run-end")
        self.stop()
        self.run_dir.save_timeline(1, self.timeline)
        a = assess(self.experiment, [self.timeline], self.target.renewal_window, Policy())
        write_reports(self.run_dir, self.experiment, a, [self.timeline])
        entry = {"passed": a.verdict.passed, "runDirectory": str(self.run_dir.path.resolve()),
                 "verdict": a.verdict.to_json()}
        if self.aborted:
            entry["aborted"] = self.aborted
        return entry

    def stop(self) -> None:
        self.done.set()
        self.observation.stop()
        self.stack.close()
        self.target.close()


_configured: dict[str, Any] = {}
_session: Session | None = None


def _interrupt(message: str) -> Exception:
    from chaoslib.exceptions import InterruptExecution

    error: Exception = InterruptExecution(f"chaoslab control: {message}")
    return error


def configure_control(experiment: dict[str, Any] | None = None, **arguments: Any) -> None:
    """Remember the experiment; the work starts before the experiment, where arguments are substituted."""
    global _session
    _configured.clear()
    _configured["experiment"] = experiment or {}
    _session = None


def before_experiment_control(context: dict[str, Any], target: str = "lab", runs_dir: str = "runs",
                              yes: bool = False, **arguments: Any) -> None:
    """Plan (the guard rails of `chaoslab run`: a target that is not the lab needs the allow-list or `yes`),
    take the target's run lock, make the run directory and start chaoslab's probes."""
    global _session
    try:
        exp = control_experiment(context, arguments)
        tgt = resolve_target(target)
        try:
            chaoslab_faults = tuple(f for f in exp.faults if f.kind != "chaostoolkit-method")
            plan = make_plan(dataclasses.replace(exp, faults=chaoslab_faults), tgt, settings=load_settings(),
                             yes=actions.consent(yes))
            plan.refuse()
            run_dir = RunDir.create(Path(runs_dir), exp.name)
            run_dir.write_experiment(exp)
            run_dir.write_target(tgt.describe())
            run_dir.write_plan(plan.to_json())
            write_json(run_dir / "chaostoolkit-experiment.json", json.loads(json.dumps(context, default=str)),
                       sort_keys=False)
            session = Session(exp, plan, tgt, run_dir)
            session.start()
        except BaseException:
            tgt.close()
            raise
    except ChaoslabError as exc:
        raise _interrupt(f"{exc}; nothing was injected") from exc
    _session = session


def before_method_control(context: dict[str, Any], **arguments: Any) -> None:
    """Record whether the steady state holds as the method starts."""
    if _session is not None:
        failing = _session.failing()
        _session.timeline.event("steady-state", phase="before", ok=not failing, failing=failing)
        _session.method_start = _session.timeline.now()


def before_activity_control(context: dict[str, Any], **arguments: Any) -> None:
    """After an abort, stop the method at its next activity (rollbacks still play)."""
    if _session is not None and _session.aborted and _session.injections and _is_inject(context):
        raise _interrupt(_session.aborted)


def _provider(activity: Any) -> dict[str, Any]:
    provider = activity.get("provider") if isinstance(activity, dict) else None
    return provider if isinstance(provider, dict) and provider.get("module") == ACTIONS else {}


def _is_inject(activity: Any) -> bool:
    return _provider(activity).get("func") not in (None, "revert_fault")


def after_activity_control(context: dict[str, Any], state: Any = None, **arguments: Any) -> None:
    """Record a chaoslab injection or revert at the instant it happened."""
    s = _session
    output = state.get("output") if isinstance(state, dict) else None
    if s is None or not _provider(context) or not isinstance(output, dict):
        return
    if output.get("format") == actions.INJECTION_FORMAT:
        inj = output["injection"]
        s.injections += 1
        with s.lock:
            s.pending[output["key"]] = Path(output["pending"])
        s.timeline.event("inject", t=s.at(output["injectedAt"]), fault=inj["fault"], index=s.injections,
                         targets=list(inj["targets"]), component=inj["component"], role=inj["role"],
                         key=output["key"])
    elif output.get("format") == actions.REVERT_FORMAT:
        with s.lock:
            s.pending.pop(output["key"], None)
        for inj in output["reverted"]:
            s.timeline.event("revert", t=s.at(output["revertedAt"]), fault=inj["fault"], index=inj["index"],
                             ok=True, error=None, key=output["key"])


def after_method_control(context: dict[str, Any], state: Any = None, **arguments: Any) -> None:
    """A method that ran no chaoslab fault counts as injected from its start (other extensions' faults)."""
    s = _session
    if s is not None and not s.injections and s.method_start is not None:
        s.timeline.event("inject", t=s.method_start, fault="chaostoolkit-method", index=1, targets=[],
                         component="", role="")


def after_rollback_control(context: dict[str, Any], state: Any = None, **arguments: Any) -> None:
    """Other extensions' faults count as reverted once the rollbacks are done."""
    s = _session
    if s is not None and not s.injections and s.method_start is not None and not s.timeline.events_of("revert"):
        s.timeline.event("revert", fault="chaostoolkit-method", index=1, ok=True, error=None)


def after_experiment_control(context: dict[str, Any], state: dict[str, Any] | None = None,
                             **arguments: Any) -> None:
    """Revert what is left, wait for recovery, judge, write the run directory and the journal entry."""
    global _session
    s, _session = _session, None
    if s is None:
        return
    try:
        if s.pending:
            s.revert_all("chaoslab control: Chaos Toolkit played no rollback for it")
        injected = bool(s.timeline.events_of("inject"))
        if injected and not s.timeline.events_of("revert"):
            s.timeline.event("revert", fault="chaostoolkit-method", index=1, ok=True, error=None)
        if injected:
            s.recover()
        entry = s.finish()
    except Exception as exc:  # noqa: BLE001 -- chaoslib would swallow it: the journal must say what failed
        s.stop()
        entry = {"passed": False, "runDirectory": str(s.run_dir.path.resolve()), "error": str(exc)}
    if state is not None:
        state["chaoslab"] = entry


def cleanup_control() -> None:
    """Stop the probes and release the lock if the experiment ended without its after-control."""
    global _session
    s, _session = _session, None
    if s is not None:
        s.revert_all("chaoslab control cleanup")
        s.stop()
