"""Workload disruption from synthetic timelines (`chaoslab.judge.disruption`, through `chaoslab.judge.measure`): a node
drained under a PodDisruptionBudget, pods replaced on other nodes, a budget breached, drain summaries; and
the label-selector and budget arithmetic the workloads probe uses."""

from __future__ import annotations

from typing import Any

import pytest

from chaoslab.judge import disruption
from chaoslab.judge.disruption import matches, required_healthy
from chaoslab.judge.measure import measure
from measure.synthetic import W, build, drained, eviction, lb, pdb, pod


def test_rescheduling_time_runs_from_each_eviction_to_its_replacement_ready_elsewhere() -> None:
    m = measure(drained(), ("apiserver-ready",), settle=5.0)
    # a: 10.2 → d Ready 13.0 (2.8 s); b: 13.5 → e Ready 17.5 (4.0 s).
    assert m.values["reschedulingTime"] == 4.0
    evidence = m.evidence["reschedulingTime"]
    assert f"{W}: 2 pods, p50 3.40 s, p95 3.94 s, max 4.00 s" in evidence
    assert "shop/web-b evicted at t=13.50 s → shop/web-e Ready on n3 at t=17.50 s" in evidence


def test_a_pod_never_replaced_counts_until_the_end_of_the_run() -> None:
    tl = build([pod(0.5, "a", "n1", True), (10.0, "inject", {"fault": "drain-node"}),
                eviction(10.0, "a", "evicted"), pod(10.5, "b", "n2", False), (30.0, "run-end", {})])
    got = disruption.rescheduling(tl, 10.0)
    assert got.value == 20.0
    assert "1 never replaced by a Ready pod" in got.evidence()


def test_without_eviction_events_the_observed_deletion_starts_the_clock() -> None:
    tl = build([pod(0.5, "a", "n1", True), (10.0, "inject", {"fault": "node-failure"}),
                pod(12.0, "a", "n1", True, deleting=True), pod(12.0, "b", "n2", False), pod(15.5, "b", "n2", True),
                (20.0, "run-end", {})])
    got = disruption.rescheduling(tl, 10.0)
    assert got.value == 3.5
    assert "shop/web-a seen deleting at t=12.00 s" in got.evidence()


def test_a_replacement_drained_in_turn_still_replaced_its_predecessor() -> None:
    tl = build([pod(0.5, "a", "n1", True), (10.0, "inject", {"fault": "drain-node"}),
                eviction(10.0, "a", "evicted"), pod(10.5, "b", "n2", False), pod(11.0, "b", "n2", True),
                eviction(20.0, "b", "evicted", node="n2"), pod(20.5, "c", "n3", False), pod(23.0, "c", "n3", True),
                (30.0, "run-end", {})])
    got = disruption.rescheduling(tl, 10.0)
    assert [(r.old.uid, r.new.uid if r.new else None, r.seconds) for r in got.replacements] == [
        ("a", "b", 1.0), ("b", "c", 3.0)]


def test_pods_removed_before_injection_are_not_counted() -> None:
    tl = build([pod(0.5, "a", "n1", True), pod(2.0, "a", "n1", False, deleting=True), pod(2.0, "b", "n2", True),
                (10.0, "inject", {"fault": "drain-node"}), (20.0, "run-end", {})])
    assert disruption.rescheduling(tl, 10.0).value is None


def test_workload_unavailable_adds_up_the_time_short_of_desired_replicas() -> None:
    m = measure(drained(), ("apiserver-ready",), settle=5.0)
    # short 10.5–13.0 and 14.0–17.5
    assert m.values["workloadUnavailable"] == 6.0
    assert m.evidence["workloadUnavailable"].startswith("6.00 s with a workload short of ready replicas: "
                                                        f"{W} short for 6.00 s from t=10.50 s (lowest 2/3")


def test_a_budget_that_held_counts_zero_violations_and_one_breach_counts_once() -> None:
    held = measure(drained(), ("apiserver-ready",), settle=5.0)
    assert held.values["pdbViolations"] == 0
    assert "1 budgets held" in held.evidence["pdbViolations"]
    breached = measure(drained(pdb_healthy={0.5: 3, 10.5: 2, 14.0: 1, 15.0: 2, 17.5: 3}),
                       ("apiserver-ready",), settle=5.0)
    assert breached.values["pdbViolations"] == 1
    assert ("pdb/shop/web 1 healthy < 2 required at t=14.00 s (t=14.00 s–15.00 s)"
            in breached.evidence["pdbViolations"])


def test_a_budget_already_short_at_injection_is_reported_not_counted() -> None:
    tl = build([*pdb(0.5, 20.0, {0.5: 1, 12.0: 2}), (10.0, "inject", {"fault": "drain-node"})])
    value, evidence = disruption.pdb_violations(tl, 10.0, 20.0)
    assert value == 0
    assert "already short at injection, not counted: pdb/shop/web" in evidence


def test_a_budget_whose_requirement_is_unknown_is_not_judged() -> None:
    tl = build([*pdb(0.5, 5.0, {0.5: 0}, required=None)])
    assert disruption.pdb_violations(tl, 0.0, 5.0) == (
        None, "not measured: no PodDisruptionBudget covering a selected workload was sampled")


def test_drain_duration_and_summary_come_from_the_fault_events() -> None:
    tl = drained()
    [d] = disruption.drains(tl)
    assert (d.node, d.seconds, d.complete, d.refusals, d.api) == ("n1", 8.0, True, 1, "policy/v1beta1")
    assert d.outcomes == {"evicted": 2, "skipped": 1}
    assert d.reasons == {"skipped": ["ignoring DaemonSet-managed Pods"]}
    m = measure(tl, ("apiserver-ready",), settle=5.0)
    assert m.values["drainDuration"] == 8.0
    assert m.evidence["drainDuration"] == ("node n1: drained in 8.00 s (2 evicted, 1 skipped; "
                                           "1 PDB refusals retried)")


def test_a_blocked_drain_is_incomplete_with_its_reason() -> None:
    tl = build([(1.0, "cordon", {"node": "n1"}),
                eviction(1.1, "a", "refused", reason="would violate the pod's disruption budget"),
                eviction(31.0, "a", "blocked", reason="would violate the pod's disruption budget", attempts=30),
                (31.0, "drain", {"node": "n1", "complete": False, "api": "policy/v1"})])
    [d] = disruption.drains(tl)
    assert not d.complete and d.outcomes == {"blocked": 1}
    assert disruption.drain_duration(tl) == (30.0, ("node n1: incomplete after 30.00 s (1 blocked; "
                                                    "1 PDB refusals retried)"))


def test_without_workloads_or_drains_nothing_is_measured() -> None:
    m = measure(build([*lb(0.5, 20.0), (10.0, "inject", {"fault": "kill-process"})]), ("apiserver-ready",), 5.0)
    for metric in ("reschedulingTime", "workloadUnavailable", "pdbViolations", "drainDuration"):
        assert m.values[metric] is None
        assert m.evidence[metric].startswith("not measured")


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "x"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({}, {"app": "db"}, True),
    (None, {"app": "db"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
])
def test_label_selectors_match_as_kubernetes_does(selector: Any, labels: dict[str, str], expected: bool) -> None:
    assert matches(selector, labels) is expected


@pytest.mark.parametrize(("spec", "expected_pods", "required"), [
    ({"minAvailable": 5}, None, 5),
    ({"minAvailable": "50%"}, 5, 3),
    ({"minAvailable": "50%"}, None, None),
    ({"maxUnavailable": 1}, 6, 5),
    ({"maxUnavailable": "10%"}, 6, 5),  # 0.6 rounds up to 1
    ({"maxUnavailable": 1}, None, None),
    ({}, 3, None),
])
def test_the_required_healthy_count_follows_the_disruption_controller(
        spec: dict[str, Any], expected_pods: int | None, required: int | None) -> None:
    assert required_healthy(spec, expected_pods) == required


def test_an_eviction_answered_late_is_timed_by_the_probe_seeing_the_pod_go() -> None:
    # A busy machine: the probe saw the pod gone and its replacement Ready at 4.9; the eviction call's
    # answer (the fault's event) came at 5.5, after both.
    tl = build([pod(0.5, "a", "n1", True), (4.0, "inject", {"fault": "drain-node"}),
                pod(4.9, "a", "n1", False, gone=True), pod(4.9, "d", "n2", True),
                eviction(5.5, "a", "evicted"), (10.0, "run-end", {})])
    got = disruption.rescheduling(tl, 4.0)
    [r] = got.replacements
    assert r.new is not None and r.new.uid == "d" and r.how == "evicted"
    assert got.value == 0.0
