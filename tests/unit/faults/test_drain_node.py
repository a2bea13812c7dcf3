from __future__ import annotations

import random
from typing import Any

import fakes
import pytest

from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import FAULTS, build
from chaoslab.faults.base import Undo, apply_undo
from chaoslab.faults.drain_node import DrainNode
from chaoslab.spec.loader import load_text


def node(name: str, cordoned: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {}}, "spec": {"unschedulable": True} if cordoned else {}}


def pod(name: str, node_name: str, owner: bool = True, ns: str = "default") -> dict[str, Any]:
    refs = [{"kind": "ReplicaSet", "name": "rs", "uid": "x", "controller": True}] if owner else []
    return {"metadata": {"name": name, "namespace": ns, "uid": f"u-{name}", "ownerReferences": refs},
            "spec": {"nodeName": node_name}, "status": {"phase": "Running"}}


class FakeApi(fakes.FakeApi):
    def __init__(self, nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.nodes, self.pods = nodes, pods
        self.patches: list[tuple[str, Any]] = []

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path == "/api/v1/nodes":
            return {"items": self.nodes}
        if path == "/apis/apps/v1/daemonsets":
            return {"items": []}
        if path == "/api/v1/pods":
            name = params["fieldSelector"].split("=", 1)[1]
            return {"items": [p for p in self.pods if p["spec"]["nodeName"] == name]}
        raise AssertionError(path)

    def patch(self, path: str, body: Any, **kw: Any) -> dict[str, Any]:
        self.patches.append((path, body))
        return {}


class FakeTarget(fakes.FakeTarget):
    name = "fake"

    def __init__(self, api: FakeApi) -> None:
        self._api = api

    def api(self) -> FakeApi:
        return self._api


def test_drain_node_is_registered() -> None:
    assert FAULTS["drain-node"] is DrainNode


@pytest.mark.parametrize(("params", "message"), [
    ({}, "name the `namespaces`"),
    ({"namespaces": ["d"], "count": 2}, "2 nodes asked for but maxNodes is 1"),
    ({"namespaces": ["d"], "nodes": ["a", "b"]}, "2 nodes asked for but maxNodes is 1"),
    ({"namespaces": ["d"], "nodes": ["a"], "count": 1}, "not both"),
    ({"namespaces": ["d"], "count": 1, "percent": 10}, "`count` or `percent`, not both"),
    ({"namespaces": ["d"], "timeout": "soon"}, "timeout"),
])
def test_meaningless_or_too_wide_settings_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build("drain-node", params)


def test_the_schema_fills_in_defaults_that_match_the_params_type() -> None:
    [exp] = load_text("""
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: drain}
spec:
  faults: [{kind: drain-node, namespaces: [default]}]
  duration: 10s
""")
    fault = build("drain-node", exp.faults[0].params)
    assert fault.params.maxNodes == 1 and fault.params.seconds("timeout") == 300
    assert fault.params.seconds("retryInterval") == 5


def test_the_schema_refuses_unknown_drain_parameters() -> None:
    with pytest.raises(SpecError, match="ignoreDaemonsets"):
        load_text("""
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: drain}
spec:
  faults: [{kind: drain-node, namespaces: [default], ignoreDaemonsets: true}]
  duration: 10s
""")


def test_resolve_records_uncordon_of_the_nodes_it_cordons_only() -> None:
    api = FakeApi([node("n1"), node("n2", cordoned=True)], [pod("a", "n1")])
    fault = DrainNode(build("drain-node", {"nodes": ["n1", "n2"], "maxNodes": 2,
                                           "namespaces": ["default"]}).params)  # type: ignore[attr-defined]
    inj = fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]
    assert inj.targets == ("node@n1", "node@n2")
    assert inj.undo == (Undo("uncordon", {"nodes": ["n1"]}),)
    assert not api.patches  # resolving changes nothing


def test_a_pod_that_refuses_the_drain_refuses_it_before_anything_is_cordoned() -> None:
    api = FakeApi([node("n1")], [pod("bare", "n1", owner=False), pod("sys", "n1", owner=False, ns="kube-system")])
    fault = build("drain-node", {"nodes": ["n1"], "namespaces": ["default"]})
    with pytest.raises(InjectionError, match=r"nothing was cordoned: node n1: cannot delete Pods that declare "
                                             r"no controller \(use force to override\): default/bare$"):
        fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]
    assert not api.patches


def test_a_random_selection_larger_than_max_nodes_is_refused() -> None:
    api = FakeApi([node(f"n{i}") for i in range(10)], [])
    fault = DrainNode(build("drain-node", {"percent": 30, "maxNodes": 2, "namespaces": ["*"]}).params,  # type: ignore[attr-defined]
                      rng=random.Random(0))
    with pytest.raises(InjectionError, match="3 nodes selected .* but maxNodes is 2"):
        fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]


def test_uncordon_undo_clears_unschedulable_and_ignores_a_node_that_is_gone() -> None:
    from chaoslab.clients.kubeapi import ApiError

    class Api(FakeApi):
        def patch(self, path: str, body: Any, **kw: Any) -> dict[str, Any]:
            if path.endswith("/gone"):
                raise ApiError("PATCH", path, 404, "NotFound", {})
            return super().patch(path, body)

    api = Api([], [])
    apply_undo(FakeTarget(api), Undo("uncordon", {"nodes": ["n1", "gone"]}))  # type: ignore[arg-type]
    assert api.patches == [("/api/v1/nodes/n1", {"spec": {"unschedulable": None}})]
