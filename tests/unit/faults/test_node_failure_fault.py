from __future__ import annotations

from pathlib import Path
from typing import Any

import fakes
import pytest

from chaoslab.errors import InjectionError, RevertError, SpecError, TargetError
from chaoslab.faults import FAULTS, build
from chaoslab.faults.base import Undo, apply_undo
from chaoslab.faults.node_failure import NodeFailure
from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.targets.lab import LabTarget


def node(name: str, ready: str = "True") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {}}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


class FakeTarget(fakes.FakeTarget):
    name = "fake"

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self._api = fakes.FakeApi({"/api/v1/nodes": {"items": nodes}})
        self.stopped: set[str] = set()
        self.calls: list[tuple[str, bool]] = []

    def api(self) -> fakes.FakeApi:
        return self._api

    def stop_heartbeat(self, node: str, stopped: bool) -> None:
        self.calls.append((node, stopped))
        (self.stopped.add if stopped else self.stopped.discard)(node)


def test_node_failure_is_registered() -> None:
    assert FAULTS["node-failure"] is NodeFailure


@pytest.mark.parametrize(("params", "message"), [
    ({"count": 2}, "2 nodes asked for but maxNodes is 1"),
    ({"nodes": ["a"], "selector": "x=y"}, "not both"),
    ({"percent": 150}, "percent must be more than 0 and at most 100"),
])
def test_too_wide_or_contradictory_selections_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build("node-failure", params)


def test_the_undo_resumes_the_heartbeat_and_is_known_before_anything_stops() -> None:
    target = FakeTarget([node("n1"), node("n2")])
    fault = build("node-failure", {"nodes": ["n2"]})
    injection = fault.resolve(target, 0)  # type: ignore[arg-type]
    assert injection.undo == (Undo("resume-heartbeat", {"nodes": ["n2"]}),) and not target.calls
    events: list[tuple[str, dict[str, Any]]] = []
    fault.inject(target, injection, record=lambda kind, **d: events.append((kind, d)))  # type: ignore[arg-type, call-arg]
    assert target.stopped == {"n2"}
    assert events == [("heartbeat", {"fault": "node-failure", "index": 0, "node": "n2", "stopped": True})]
    for undo in injection.undo:
        apply_undo(target, undo)  # type: ignore[arg-type]
    assert target.stopped == set() and target.calls == [("n2", True), ("n2", False)]


def test_a_node_that_is_not_ready_or_a_selection_over_max_nodes_is_refused() -> None:
    target = FakeTarget([node("n1", ready="Unknown"), node("n2"), node("n3")])
    with pytest.raises(InjectionError, match=r"n1 \(Ready=Unknown\) not Ready now"):
        build("node-failure", {"nodes": ["n1"]}).resolve(target, 0)  # type: ignore[arg-type]
    with pytest.raises(InjectionError, match="3 nodes selected .* but maxNodes is 2"):
        build("node-failure", {"percent": 100, "maxNodes": 2}).resolve(target, 0)  # type: ignore[arg-type]
    assert not target.calls


def test_a_target_that_cannot_stop_heartbeats_fails_the_revert_clearly() -> None:
    class NoNodes:
        name = "ssh"

        def stop_heartbeat(self, node: str, stopped: bool) -> None:
            raise TargetError("stopping a node's heartbeat is not supported by ssh targets")

    with pytest.raises(RevertError, match="could not undo resume-heartbeat .*not supported"):
        apply_undo(NoNodes(), Undo("resume-heartbeat", {"nodes": ["n1"]}))  # type: ignore[arg-type]


def test_the_lab_stops_a_heartbeat_with_a_file_named_after_the_node(tmp_path: Path) -> None:
    target = LabTarget(LabLayout(LabConfig(name="u", nodes=2, state_root=tmp_path)))
    assert target.simulated_nodes() == ["u-node-1", "u-node-2"]
    target.stop_heartbeat("u-node-2", stopped=True)
    assert (target.layout.nodes_control_dir / "u-node-2").exists() and target.heartbeat_stopped("u-node-2")
    target.stop_heartbeat("u-node-2", stopped=False)
    target.stop_heartbeat("u-node-2", stopped=False)  # idempotent
    assert not target.heartbeat_stopped("u-node-2")
    with pytest.raises(TargetError, match="cannot stop the heartbeat of node 'db-1': not one of its simulated"):
        target.stop_heartbeat("db-1", stopped=True)
