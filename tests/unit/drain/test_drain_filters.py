"""kubectl drain's per-pod decisions, on pod dicts as the API returns them."""

from __future__ import annotations

import random
from typing import Any

import pytest

from chaoslab.faults.drain import (
    DAEMONSET_FATAL,
    DAEMONSET_WARNING,
    LOCAL_STORAGE_FATAL,
    LOCAL_STORAGE_WARNING,
    MIRROR,
    UNMANAGED_FATAL,
    UNMANAGED_WARNING,
    DrainOptions,
    choose_nodes,
    classify,
    decide,
    node_count,
    refusal,
)

OPEN = DrainOptions(namespaces=("default",))


def pod(name: str = "p", ns: str = "default", owner: str | None = "ReplicaSet", phase: str = "Running",
        emptydir: bool = False, mirror: bool = False, deleted: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": f"{owner.lower()}-x",
                                    "uid": "o1", "controller": True}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    if deleted:
        meta["deletionTimestamp"] = deleted
    volumes = [{"name": "scratch", "emptyDir": {}}] if emptydir else [{"name": "cfg", "configMap": {"name": "c"}}]
    return {"metadata": meta, "spec": {"nodeName": "n1", "volumes": volumes}, "status": {"phase": phase}}


def test_a_controller_managed_pod_is_evicted_without_a_reason() -> None:
    d = decide(pod(), OPEN)
    assert (d.action, d.reason, d.owner) == ("evict", "", "ReplicaSet/replicaset-x")


def test_daemonset_pods_refuse_the_drain_unless_ignored_and_are_never_evicted() -> None:
    existing = {("default", "daemonset-x")}
    assert (decide(pod(owner="DaemonSet"), OPEN, existing).action,
            decide(pod(owner="DaemonSet"), OPEN, existing).reason) == ("error", DAEMONSET_FATAL)
    ignored = decide(pod(owner="DaemonSet"), DrainOptions(namespaces=("default",), ignore_daemonsets=True), existing)
    assert (ignored.action, ignored.reason) == ("skip", DAEMONSET_WARNING)


def test_an_orphaned_daemonset_pod_needs_force_and_then_still_meets_the_emptydir_rule() -> None:
    assert decide(pod(owner="DaemonSet"), OPEN, set()).action == "error"
    forced = DrainOptions(namespaces=("default",), force=True, ignore_daemonsets=True)
    assert decide(pod(owner="DaemonSet"), forced, set()).action == "evict"
    assert decide(pod(owner="DaemonSet", emptydir=True), forced, set()).reason == LOCAL_STORAGE_FATAL


def test_a_finished_daemonset_pod_is_deleted() -> None:
    assert decide(pod(owner="DaemonSet", phase="Succeeded"), OPEN, {("default", "daemonset-x")}).action == "delete"


def test_mirror_pods_are_skipped_even_with_force() -> None:
    d = decide(pod(owner="Node", mirror=True), DrainOptions(namespaces=("default",), force=True))
    assert (d.action, d.reason) == ("skip", MIRROR)
    assert decide(pod(owner=None, mirror=True, phase="Succeeded"), OPEN).action == "skip"


def test_emptydir_needs_consent() -> None:
    assert (decide(pod(emptydir=True), OPEN).action, decide(pod(emptydir=True), OPEN).reason) == \
        ("error", LOCAL_STORAGE_FATAL)
    d = decide(pod(emptydir=True), DrainOptions(namespaces=("default",), delete_emptydir_data=True))
    assert (d.action, d.reason) == ("evict", LOCAL_STORAGE_WARNING)


def test_unmanaged_pods_need_force_and_forced_ones_keep_the_last_warning_as_kubectl_does() -> None:
    assert decide(pod(owner=None), OPEN).reason == UNMANAGED_FATAL
    both = DrainOptions(namespaces=("default",), force=True, delete_emptydir_data=True)
    d = decide(pod(owner=None, emptydir=True), both)
    assert (d.action, d.reason) == ("evict", UNMANAGED_WARNING)


def test_an_owner_reference_that_is_not_a_controller_does_not_count() -> None:
    p = pod(owner=None)
    p["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "r", "uid": "u", "controller": False}]
    assert decide(p, OPEN).action == "error"


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pods_are_deleted_whatever_else_they_are(phase: str) -> None:
    d = decide(pod(owner=None, emptydir=True, phase=phase), OPEN)
    assert (d.action, d.reason) == ("delete", f"finished ({phase}): deleted without eviction")


def test_kube_system_and_unnamed_namespaces_are_protected() -> None:
    assert decide(pod(ns="other"), OPEN).action == "skip"
    assert "name it in namespaces" in decide(pod(ns="other"), OPEN).reason
    every = DrainOptions(namespaces=("*",))
    assert decide(pod(ns="other"), every).action == "evict"
    assert "allowKubeSystem" in decide(pod(ns="kube-system"), every).reason
    assert decide(pod(ns="kube-system"), DrainOptions(namespaces=("*",), allow_kube_system=True)).action == "evict"
    # protection comes first: a protected bare pod refuses nothing
    assert decide(pod(ns="kube-system", owner=None), every).action == "skip"


def test_pods_deleted_long_ago_are_skipped_only_with_the_timeout_set() -> None:
    p = pod(deleted="2030-01-01T00:00:00Z")
    now = 1893456000.0 + 100  # 100 s after the deletion timestamp
    assert decide(p, OPEN, now=now).action == "evict"
    assert decide(p, DrainOptions(namespaces=("default",), skip_deleted_after=60), now=now).action == "skip"
    assert decide(p, DrainOptions(namespaces=("default",), skip_deleted_after=600), now=now).action == "evict"


def test_refusal_groups_pods_by_reason_in_kubectls_words() -> None:
    plan = classify([pod("b", owner=None), pod("a", owner=None), pod("c", emptydir=True), pod("d")], OPEN)
    assert [d.name for d in plan] == ["a", "b", "c", "d"]
    assert refusal(plan) == [
        "cannot delete Pods that declare no controller (use force to override): default/a, default/b",
        "cannot delete Pods with local storage (use deleteEmptyDirData to override): default/c",
    ]


def nodes(*names: str) -> list[dict[str, Any]]:
    return [{"metadata": {"name": n}} for n in names]


def test_node_count_from_count_or_percent_rounds_up_and_never_exceeds_the_candidates() -> None:
    assert node_count(10, None, None) == 1
    assert node_count(10, 3, None) == 3
    assert node_count(10, None, 25) == 3
    assert node_count(2, 5, None) == 2


def test_choose_nodes_refuses_more_than_max_nodes_instead_of_cutting_down() -> None:
    rng = random.Random(1)
    chosen, problems = choose_nodes(nodes("n1", "n2", "n3"), [], None, 100, 2, rng)
    assert chosen == [] and "3 nodes selected" in problems[0] and "maxNodes is 2" in problems[0]
    chosen, problems = choose_nodes(nodes("n1", "n2", "n3"), [], 2, None, 2, rng)
    assert len(chosen) == 2 and not problems
    assert choose_nodes(nodes("n1", "n2"), ["n1", "n2"], None, None, 1, rng)[1]


def test_choose_nodes_by_name_reports_unknown_names() -> None:
    assert choose_nodes(nodes("n1"), ["n9"], None, None, 1, random.Random())[1] == ["no node n9 (among n1)"]
    assert choose_nodes(nodes("n1", "n2"), ["n2"], None, None, 1, random.Random()) == (["n2"], [])
