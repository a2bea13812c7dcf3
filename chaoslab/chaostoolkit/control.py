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
import json
import threading
import time
from pathlib import Path
from typing import Any

from chaoslab.chaostoolkit import actions
from chaoslab.errors import ChaoslabError
from chaoslab.execute.runner import TICK, new_run_dir, run_lock
from chaoslab.judge.conditions import failing_conditions, live_value
from chaoslab.judge.measure import measure
from chaoslab.judge.verdict import judge
from chaoslab.plan.probes import probes_for
from chaoslab.probes import ProbeGroup
from chaoslab.reports import experiment_to_json, write_reports
from chaoslab.spec.chaostoolkit import ACTIONS, control_experiment
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target, describe, resolve_target
from chaoslab.timeline import Timeline

SETTLE = 10.0
"""Seconds the session waits at its start for chaoslab's steady state before Chaos Toolkit goes on."""

__all__ = ["after_activity_control", "after_experiment_control", "after_method_control",
           "after_rollback_control", "before_activity_control", "before_experiment_control",
           "before_method_control", "cleanup_control", "configure_control"]


class Session:
    """One `chaos run`, from before the experiment to after it: the only writer of its timeline."""

    def __init__(self, experiment: Experiment, target: Target, run_dir: Path) -> None:
        self.experiment = experiment
        self.target = target
        self.run_dir = run_dir
        self.stack = contextlib.ExitStack()
        self.timeline = Timeline.start()
        self.group: ProbeGroup | None = None
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
        return failing_conditions(self.timeline, self.experiment.steady_state, self.timeline.now(),
                                  self.target.renewal_window)

    def start(self) -> None:
        self.stack.enter_context(run_lock(self.target, self.run_dir))
        self.timeline.event("run-start", experiment=self.experiment.name, run=1, driver="chaostoolkit")
        self.group = ProbeGroup.start(probes_for(self.experiment), self.target, self.timeline)
        if self.experiment.abort:
            threading.Thread(target=self._watch_abort, name="chaoslab-abort", daemon=True).start()
        time.sleep(1.0)  # the probes' first samples, before the hypothesis and the method
        # Then the steady state, as a chaoslab run waits for it (a Lease counts once a renewal is seen, up to
        # a retry period); not met by then, the method's start records it as failing.
        deadline = time.monotonic() + SETTLE
        while self.failing() and time.monotonic() < deadline:
            time.sleep(TICK)

    def revert_all(self, why: str) -> None:
        with self.lock:
            for key, pending in list(self.pending.items()):
                try:
                    reverted = actions.revert_pending(pending)
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
            for metric, threshold in self.experiment.abort.items():
                value = live_value(self.timeline, metric)
                if value is not None and value > threshold:
                    self.aborted = f"abort condition {metric} > {threshold:g} (now {value:.1f})"
                    self.timeline.event("abort", reason=self.aborted)
                    self.revert_all("abort")
                    break

    def recover(self) -> None:
        """After the rollbacks: wait for the steady state to hold for the settle period."""
        exp = self.experiment
        deadline = self.timeline.now() + exp.recovery_timeout
        since: float | None = None
        while self.timeline.now() < deadline:
            now = self.timeline.now()
            since = (since if since is not None else now) if not self.failing() else None
            if since is not None and now - since >= exp.settle:
                break
            time.sleep(TICK)
        self.timeline.event("steady-state", phase="after", ok=since is not None and
                            self.timeline.now() - since >= exp.settle, failing=self.failing())

    def finish(self) -> dict[str, Any]:
        """Stop, save, measure, judge, write the reports; the journal's `chaoslab` entry."""
        self.timeline.event("run-end")
        self.stop()
        out = self.run_dir / "runs" / "1"
        out.mkdir(parents=True, exist_ok=True)
        self.timeline.save(out / "timeline.jsonl")
        m = measure(self.timeline, self.experiment.steady_state, self.experiment.settle,
                    self.target.renewal_window)
        verdict = judge(self.experiment, [m])
        write_reports(self.run_dir, self.experiment, verdict, [self.timeline], [m])
        entry = {"passed": verdict.passed, "runDirectory": str(self.run_dir.resolve()),
                 "verdict": verdict.to_json()}
        if self.aborted:
            entry["aborted"] = self.aborted
        return entry

    def stop(self) -> None:
        self.done.set()
        if self.group is not None:
            self.group.stop()
            self.group = None
        self.stack.close()


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
                              **arguments: Any) -> None:
    """Take the target's run lock, make the run directory and start chaoslab's probes."""
    global _session
    try:
        exp = control_experiment(context, arguments)
        tgt = resolve_target(target)
        run_dir = new_run_dir(Path(runs_dir), exp)
        (run_dir / "experiment.json").write_text(json.dumps(experiment_to_json(exp), indent=1))
        (run_dir / "target.json").write_text(json.dumps(describe(tgt), indent=1))
        (run_dir / "chaostoolkit-experiment.json").write_text(json.dumps(context, indent=1, default=str))
        session = Session(exp, tgt, run_dir)
        session.start()
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
        entry = {"passed": False, "runDirectory": str(s.run_dir.resolve()), "error": str(exc)}
    if state is not None:
        state["chaoslab"] = entry


def cleanup_control() -> None:
    """Stop the probes and release the lock if the experiment ended without its after-control."""
    global _session
    s, _session = _session, None
    if s is not None:
        s.revert_all("chaoslab control cleanup")
        s.stop()
