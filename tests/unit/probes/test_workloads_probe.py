"""The workloads probe turns one tick's lists into samples (no API: `record` is fed the lists), the policy
API is discovered, and the run session points the probe at the namespaces the faults name."""

from __future__ import annotations

from typing import Any

from fakes import FakeApi

from chaoslab.plan.probes import fault_namespaces, probes_for
from chaoslab.probes.workloads import WorkloadsProbe, policy_version
from chaoslab.spec.model import Experiment, FaultSpec
from chaoslab.timeline import Timeline


def pod(name: str, uid: str, node: str, ready: bool, deleting: bool = False, app: str = "web") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": uid, "labels": {"app": app},
                            "creationTimestamp": "2026-01-01T00:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


WEB = ("Deployment", {"metadata": {"name": "web", "namespace": "shop"},
                      "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
                      "status": {"readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 3}})
PDB = {"metadata": {"name": "web", "namespace": "shop"},
       "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
       "status": {"currentHealthy": 2, "desiredHealthy": 2, "disruptionsAllowed": 0, "expectedPods": 3}}
OTHER_PDB = {"metadata": {"name": "db", "namespace": "shop"},
             "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}, "status": {}}


def probe() -> tuple[WorkloadsProbe, Timeline]:
    tl = Timeline(0.0, 0.0, lambda: 0.0)
    return WorkloadsProbe(None, tl, namespaces=("shop",)), tl  # type: ignore[arg-type]


def test_one_tick_records_the_workload_its_pods_and_the_budget_over_them() -> None:
    p, tl = probe()
    pods = [pod("web-a", "a", "n1", True), pod("web-b", "b", "n1", True, deleting=True), pod("web-c", "c", "n2", False),
            pod("db-0", "z", "n3", True, app="db")]
    p.record(1.0, [WEB], pods, [PDB, OTHER_PDB])
    [w] = tl.samples_of("workloads", "Deployment/shop/web")
    assert dict(w.values) == {"desired": 3, "ready": 2, "available": 2, "updated": 3, "healthy": 1}
    assert [(s.values["pod"], s.values["ready"], s.values["deleting"]) for s in tl.samples_of("workloads", "pod")] == [
        ("shop/web-a", True, False), ("shop/web-b", True, True), ("shop/web-c", False, False)]
    [b] = tl.samples_of("workloads", "pdb/shop/web")
    assert (b.values["healthy"], b.values["required"], b.values["disruptionsAllowed"], b.values["workloads"]) == (
        1, 2, 0, ["Deployment/shop/web"])
    assert not tl.samples_of("workloads", "pdb/shop/db")  # covers no selected workload


def test_pods_are_sampled_again_only_when_they_change_and_once_when_gone() -> None:
    p, tl = probe()
    p.record(1.0, [WEB], [pod("web-a", "a", "n1", False)], [])
    p.record(1.5, [WEB], [pod("web-a", "a", "n1", False)], [])
    p.record(2.0, [WEB], [pod("web-a", "a", "n1", True)], [])
    p.record(2.5, [WEB], [], [])
    p.record(3.0, [WEB], [], [])
    got = [(s.t, s.values["ready"], s.values["gone"]) for s in tl.samples_of("workloads", "pod")]
    assert got == [(1.0, False, False), (2.0, True, False), (2.5, False, True)]


def test_policy_v1_is_preferred_and_v1beta1_found_on_kubernetes_1_20() -> None:
    pdbs = {"resources": [{"name": "poddisruptionbudgets"}, {"name": "poddisruptionbudgets/status"}]}
    old = FakeApi({"/apis/policy": {"versions": [{"groupVersion": "policy/v1beta1"}]}, "/apis/policy/v1beta1": pdbs})
    new = FakeApi({"/apis/policy": {"versions": [{"groupVersion": "policy/v1"}, {"groupVersion": "policy/v1beta1"}]},
                   "/apis/policy/v1": pdbs, "/apis/policy/v1beta1": pdbs})
    assert policy_version(old) == "policy/v1beta1"  # type: ignore[arg-type]
    assert policy_version(new) == "policy/v1"  # type: ignore[arg-type]


def test_the_probe_watches_the_namespaces_the_faults_name_unless_told_otherwise() -> None:
    drain = FaultSpec("drain-node", {"nodes": ["n1"], "namespaces": ["shop", "cart"]})
    evict = FaultSpec("evict-pods", {"namespace": "shop"})
    exp = Experiment(name="x", faults=(drain, evict), duration=1.0, probes=("workloads",))
    assert fault_namespaces(exp) == ["shop", "cart"]
    assert probes_for(exp) == [{"kind": "workloads", "namespaces": ["shop", "cart"]}]
    kill = Experiment(name="x", faults=(FaultSpec("kill-process", {}),), duration=1.0, probes=("disruption",))
    assert probes_for(kill) == [{"kind": "workloads", "interval": 0.5, "namespaces": ["default"]}]
