"""The Chaos Toolkit extension without a cluster: what discovery lists, and what the control records on its
timeline as chaoslib calls it around activities."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import fakes
import pytest

import chaoslab
from chaoslab.chaostoolkit import actions, control, probes
from chaoslab.errors import InjectionError
from chaoslab.execute.rundir import RunDir
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import make_plan
from chaoslab.spec.chaostoolkit import ACTIONS, control_experiment


def test_discovery_lists_every_fault_action_and_probe_with_typed_arguments() -> None:
    discovery = chaoslab.discover(discover_system=False)
    assert discovery["extension"] == {"name": "chaoslab", "version": chaoslab.__version__}
    assert discovery["system"] is None
    found = {a["name"]: a for a in discovery["activities"]}
    assert {n for n, a in found.items() if a["type"] == "action"} == set(actions.__all__)
    assert {n for n, a in found.items() if a["type"] == "probe"} == set(probes.__all__)
    args = {a["name"]: a for a in found["inject_fault"]["arguments"]}
    assert args["params"] == {"name": "params", "type": "mapping"}
    assert args["duration"] == {"name": "duration", "type": "number", "default": 0.0}
    assert found["inject_fault"]["return_type"] == "mapping"
    assert {a["name"]: a.get("type") for a in found["steady_state"]["arguments"]}["conditions"] == "list"
    assert found["steady_state"]["return_type"] == "boolean"
    assert all(a["doc"] for a in discovery["activities"])


def test_control_module_exposes_chaoslibs_hooks() -> None:
    for hook in ("configure_control", "before_experiment_control", "after_experiment_control",
                 "before_method_control", "after_method_control", "after_activity_control",
                 "after_rollback_control", "cleanup_control"):
        assert callable(getattr(control, hook)), hook


class FakeTarget(fakes.FakeTarget):
    name = "lab 'fake'"
    renewal_window = 5.0


@pytest.fixture
def session(tmp_path: Path) -> Any:
    exp = control_experiment({"title": "t", "method": []}, {"steadyState": ["apiserver-ready"]})
    target = FakeTarget()
    plan = make_plan(dataclasses.replace(exp, faults=()), target, settings=Settings(), yes=True)
    s = control.Session(exp, plan, target, RunDir(tmp_path))
    control._session = s
    yield s
    control._session = None


def inject_activity() -> dict[str, Any]:
    return {"type": "action", "provider": {"type": "python", "module": ACTIONS, "func": "inject_fault"}}


def test_the_control_records_an_injection_at_the_instant_the_action_reports(session: Any) -> None:
    wall = session.timeline.started_wall + 2.5
    output = {"format": actions.INJECTION_FORMAT, "key": "k-1", "pending": "/tmp/p", "injectedAt": wall,
              "injection": {"fault": "kill-process", "index": 0, "component": "etcd", "role": "leader",
                            "targets": ["etcd@cp2"], "undo": []}}
    control.after_activity_control(inject_activity(), state={"output": output})
    [event] = session.timeline.events_of("inject")
    assert event.t == pytest.approx(2.5)
    assert (event.detail["component"], event.detail["targets"], event.detail["role"]) == ("etcd", ["etcd@cp2"], "leader")
    assert session.pending == {"k-1": Path("/tmp/p")}
    revert = {"format": actions.REVERT_FORMAT, "key": "k-1", "revertedAt": wall + 10, "pending": "/tmp/p",
              "reverted": [output["injection"]]}
    control.after_activity_control({**inject_activity(), "provider": {"module": ACTIONS, "func": "revert_fault"}},
                                   state={"output": revert})
    [event] = session.timeline.events_of("revert")
    assert event.t == pytest.approx(12.5) and event.detail["ok"] is True
    assert session.pending == {}


def test_other_extensions_methods_count_as_injected_from_the_method_start(session: Any) -> None:
    control.before_method_control({})
    control.after_activity_control({"type": "action", "provider": {"type": "python", "module": "chaosk8s"}},
                                   state={"output": {"format": actions.INJECTION_FORMAT}})
    control.after_method_control({})
    control.after_rollback_control({})
    [inject] = session.timeline.events_of("inject")
    assert inject.detail["fault"] == "chaostoolkit-method" and inject.t == session.method_start
    assert [e.detail["fault"] for e in session.timeline.events_of("revert")] == ["chaostoolkit-method"]


def test_an_injection_still_pending_under_the_same_key_is_refused(tmp_path: Path) -> None:
    pending = actions.pending_dir(str(tmp_path), "k")
    pending.mkdir(parents=True)
    (pending / "undo.json").write_text("[]")
    with pytest.raises(InjectionError, match=r"still pending .*chaoslab recover"):
        actions.inject_fault("kill-process", {"component": "etcd"}, "lab:none", 1.0, "k", str(tmp_path))


def test_reverting_with_nothing_pending_is_a_clean_no_op(tmp_path: Path) -> None:
    out = actions.revert_fault("lab:none", "never-injected", str(tmp_path))
    assert out["reverted"] == [] and out["format"] == actions.REVERT_FORMAT
