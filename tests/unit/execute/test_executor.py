"""The executor's order with fakes (pure logic: no cluster): a plan with a refusal changes nothing, the undo
is on disk before the first injection, and every way a run can end early (an injection error, an abort,
Ctrl-C) reverts what was injected and keeps the pending undo only while something may still be in place."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fakes import FakeTarget

from chaoslab import faults
from chaoslab.errors import SpecError
from chaoslab.execute import executor
from chaoslab.execute.executor import execute
from chaoslab.execute.rundir import RunDir
from chaoslab.faults.base import FaultBase, FaultParams, Injection, Undo
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import Plan, make_plan
from chaoslab.spec.model import Experiment, FaultSpec

JOURNAL: list[str] = []
"""What happened, in order: `inject <key>` (with whether its undo was on disk then) and `undo <key>`."""


@dataclass(frozen=True)
class MarkParams(FaultParams):
    key: str = "a"
    fail: bool = False
    interrupt: bool = False


class Mark(FaultBase):
    kind: ClassVar[str] = "test-mark"
    params_type: ClassVar[type] = MarkParams
    level: ClassVar[str] = "api"
    run_dir: ClassVar[Path | None] = None

    def __init__(self, params: MarkParams, duration: float = 0.0) -> None:
        self.params = params

    def resolve(self, target: Any, index: int) -> Injection:
        return Injection(self.kind, index, "test", "marked", (f"mark@{self.params.key}",),
                         (Undo("signal", {"component": "test", "host": self.params.key, "signal": "CONT"}),))

    def inject(self, target: Any, injection: Injection, record: Any = None) -> None:
        assert Mark.run_dir is not None
        pending = json.loads((Mark.run_dir / "undo.json").read_text())
        JOURNAL.append(f"inject {self.params.key} (undo of {len(pending)} on disk)")
        if self.params.fail:
            raise executor.InjectionError(f"fault {self.params.key} failed")
        if self.params.interrupt:
            raise KeyboardInterrupt


class Target(FakeTarget):
    is_lab = True

    def signal(self, component: str, host: str, signal: str) -> int:
        JOURNAL.append(f"undo {host}")
        return 1


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(executor, "FIRST_SAMPLES", 0.0)
    monkeypatch.setattr(executor, "STEADY_HOLD", 0.0)
    monkeypatch.setattr(executor, "TICK", 0.01)
    monkeypatch.setitem(faults.FAULTS, Mark.kind, Mark)
    JOURNAL.clear()
    yield
    JOURNAL.clear()


def plan_of(tmp_path: Path, *marks: dict[str, Any], duration: float = 0.05, yes: bool = True,
            target: FakeTarget | None = None) -> tuple[Plan, FakeTarget, RunDir]:
    exp = Experiment("order", tuple(FaultSpec(Mark.kind, m) for m in marks), duration, steady_state=(), probes=(),
                     settle=0.0, recovery_timeout=1.0)
    target = target or Target(lock_path=tmp_path / "run.lock")
    run_dir = RunDir.create(tmp_path / "runs", exp.name)
    Mark.run_dir = run_dir.path
    return make_plan(exp, target, settings=Settings(), yes=yes), target, run_dir


def test_the_undo_of_every_fault_is_written_before_the_first_injection(tmp_path: Path) -> None:
    plan, target, run_dir = plan_of(tmp_path, {"key": "a"}, {"key": "b"})
    record = execute(plan, target, run_dir)
    assert record.error == ""
    assert JOURNAL == ["inject a (undo of 2 on disk)", "inject b (undo of 2 on disk)", "undo b", "undo a"]
    assert not (run_dir / "undo.json").exists()
    events = [e.kind for e in record.timelines[0].events]
    assert events.index("inject") > events.index("steady-state") and "revert" in events


def test_the_executor_runs_the_very_fault_objects_of_the_plan(tmp_path: Path) -> None:
    plan, target, run_dir = plan_of(tmp_path, {"key": "a"})
    planned = plan.faults[0].fault
    seen: list[object] = []
    original = Mark.inject

    def spy(self: Mark, *args: Any, **kw: Any) -> None:
        seen.append(self)
        original(self, *args, **kw)

    Mark.inject = spy  # type: ignore[method-assign]
    try:
        execute(plan, target, run_dir)
    finally:
        Mark.inject = original  # type: ignore[method-assign]
    assert seen == [planned]
    assert json.loads((run_dir / "plan.json").read_text())["faults"][0]["kind"] == Mark.kind


def test_a_plan_with_a_refusal_changes_nothing(tmp_path: Path) -> None:
    plan, target, run_dir = plan_of(tmp_path, {"key": "a"}, yes=False, target=FakeTarget(lock_path=tmp_path / "l"))
    assert plan.refusals and "is not the lab and is not allowed" in plan.refusals[0]
    with pytest.raises(SpecError, match="is not the lab and is not allowed"):
        execute(plan, target, run_dir)
    assert JOURNAL == []
    assert not (run_dir / "undo.json").exists() and not (run_dir / "runs").exists()


def test_an_injection_error_reverts_what_was_injected_and_stops_the_runs(tmp_path: Path) -> None:
    plan, target, run_dir = plan_of(tmp_path, {"key": "a"}, {"key": "b", "fail": True}, {"key": "c"})
    record = execute(plan, target, run_dir)
    assert "fault b failed" in record.error
    # b counts as injected (it may have done part of its work): its undo runs too; c never started.
    assert JOURNAL == ["inject a (undo of 3 on disk)", "inject b (undo of 3 on disk)", "undo b", "undo a"]
    assert not (run_dir / "undo.json").exists()
    assert len(record.timelines) == 1


def test_an_abort_reverts_at_once(tmp_path: Path) -> None:
    plan, target, run_dir = plan_of(tmp_path, {"key": "a"}, duration=30.0)
    record = execute(plan, target, run_dir, abort_check=lambda tl: "the day's budget is spent")
    assert "RunAborted: the day's budget is spent" in record.error
    assert JOURNAL == ["inject a (undo of 1 on disk)", "undo a"]
    [abort] = record.timelines[0].events_of("abort")
    assert abort.detail["reason"] == "the day's budget is spent"


def test_ctrl_c_while_the_fault_holds_reverts_and_propagates(tmp_path: Path) -> None:
    plan, target, run_dir = plan_of(tmp_path, {"key": "a"}, duration=30.0)

    def interrupt(tl: Any) -> str | None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(plan, target, run_dir, abort_check=interrupt)
    assert JOURNAL == ["inject a (undo of 1 on disk)", "undo a"]
    assert not (run_dir / "undo.json").exists()
    assert (run_dir.timeline_path(1)).exists()


def test_ctrl_c_during_an_injection_reverts_it(tmp_path: Path) -> None:
    plan, target, run_dir = plan_of(tmp_path, {"key": "a"}, {"key": "b", "interrupt": True})
    with pytest.raises(KeyboardInterrupt):
        execute(plan, target, run_dir)
    assert JOURNAL == ["inject a (undo of 2 on disk)", "inject b (undo of 2 on disk)", "undo b", "undo a"]


def test_a_failed_revert_keeps_the_pending_undo_for_recover(tmp_path: Path) -> None:
    class Broken(Target):
        def signal(self, component: str, host: str, signal: str) -> int:
            JOURNAL.append(f"undo {host} failed")
            raise executor.TargetError("host unreachable")

    plan, target, run_dir = plan_of(tmp_path, {"key": "a"}, target=Broken(lock_path=tmp_path / "run.lock"))
    record = execute(plan, target, run_dir)
    assert "RevertError" in record.error and "host unreachable" in record.error
    assert run_dir.pending()[0]["targets"] == ["mark@a"]


def test_an_slo_judging_a_workload_that_is_not_there_stops_the_run_before_injection(tmp_path: Path) -> None:
    from fakes import FakeApi

    from chaoslab.spec.model import SloSpec

    api = FakeApi({"/api/v1/namespaces/shop/pods": {"items": []}})
    target = Target(lock_path=tmp_path / "run.lock", api=api)
    exp = Experiment("drain", (FaultSpec(Mark.kind, {"key": "a"}),), 0.05, steady_state=(),
                     probes=({"kind": "workloads", "namespaces": ["shop"]},), settle=0.0,
                     slos=(SloSpec("reschedulingTime", "max", 30.0), SloSpec("recoveryTime", "max", 30.0)))
    run_dir = RunDir.create(tmp_path / "runs", exp.name)
    Mark.run_dir = run_dir.path
    plan = make_plan(exp, target, [], settings=Settings(), yes=True)
    plan.workload = {"namespaces": ["shop"], "selector": None, "slos": ["reschedulingTime"]}
    record = execute(plan, target, run_dir)
    assert "could not run: the SLOs reschedulingTime judge a workload, and no pod runs in shop" in record.error
    assert "nothing was injected" in record.error and JOURNAL == []
    api.routes["/api/v1/namespaces/shop/pods"] = {"items": [{"metadata": {"name": "web-1"}}]}
    plan.probes = []  # the workloads probe itself is not what this test is about
    again = RunDir.create(tmp_path / "runs", exp.name)
    Mark.run_dir = again.path
    assert execute(plan, target, again).error == ""
    assert JOURNAL == ["inject a (undo of 1 on disk)", "undo a"]


def test_the_plan_names_the_workload_its_slos_need() -> None:
    from chaoslab.plan.planner import needed_workload
    from chaoslab.spec.model import SloSpec

    exp = Experiment("d", (), 1.0, slos=(SloSpec("pdbViolations", "max", 0.0), SloSpec("recoveryTime", "max", 9.0)))
    assert needed_workload(exp, [{"kind": "workloads", "namespaces": ["shop"], "selector": "app=web"}]) == \
        {"namespaces": ["shop"], "selector": "app=web", "slos": ["pdbViolations"]}
    assert needed_workload(Experiment("k", (), 1.0), []) == {}
