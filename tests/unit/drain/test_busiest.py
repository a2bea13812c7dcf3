"""drain-node `select: busiest`: the node that runs the workload, never a node running none of it."""

import random

import pytest

from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import build
from chaoslab.faults.drain_node import DrainNodeParams, busiest


def pod(node: str, ns: str = "shop", phase: str = "Running", deleting: bool = False) -> dict:
    meta: dict = {"namespace": ns, "name": f"p-{node}", "uid": node}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": phase}}


def test_the_busiest_node_for_the_namespaces_wins_ties_by_name() -> None:
    pods = [pod("n2"), pod("n2"), pod("n3"), pod("n3"), pod("n1", ns="other"), pod("n1", phase="Succeeded"),
            pod("n1", deleting=True)]
    chosen, counts = busiest(["n1", "n2", "n3"], pods, ["shop"], 1)
    assert chosen == ["n2"] and counts == {"n1": 0, "n2": 2, "n3": 2}
    assert busiest(["n1", "n2", "n3"], pods, ["*"], 3)[0] == ["n2", "n3", "n1"]  # n1: its pod in `other`
    assert busiest(["n1"], pods, ["shop"], 1)[0] == []


class FakeApi:
    def __init__(self, pods: list[dict]) -> None:
        self.pods = pods

    def get(self, path: str, **params: object) -> dict:
        if path == "/api/v1/nodes":
            return {"items": [{"metadata": {"name": n}, "spec": {}} for n in ("n1", "n2", "n3")]}
        if path == "/api/v1/pods":
            node = str(params.get("fieldSelector", "")).removeprefix("spec.nodeName=")
            return {"items": [p for p in self.pods if not node or p["spec"]["nodeName"] == node]}
        if path == "/apis/apps/v1/daemonsets":
            return {"items": []}
        raise AssertionError(path)


def fault(**params: object):
    f = build("drain-node", {"namespaces": ["shop"], "select": "busiest", **params})
    f.rng = random.Random(1)
    return f


def test_plan_picks_the_node_running_the_workload() -> None:
    owned = {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": True}]}
    pods = [pod("n3"), pod("n3"), pod("n1")]
    for p in pods:
        p["metadata"].update(owned)
        p["spec"]["containers"] = [{"name": "c"}]
    chosen, _, _ = fault().plan(FakeApi(pods))
    assert chosen == ["n3"]


def test_a_drain_with_no_workload_anywhere_is_refused_before_cordoning() -> None:
    with pytest.raises(InjectionError, match="busiest found no pod of namespaces shop"):
        fault().plan(FakeApi([]))


def test_busiest_cannot_go_with_names_and_must_be_known() -> None:
    with pytest.raises(SpecError):
        DrainNodeParams(namespaces=("shop",), nodes=("n1",), select="busiest")
    with pytest.raises(SpecError):
        DrainNodeParams(namespaces=("shop",), select="fullest")
