"""drain-node on the real lab: PDBs hold the drain until replacements are Ready, DaemonSet pods stay,
emptyDir and the blast radius refuse before anything is cordoned, and revert uncordons."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import eventually
from workloads import (
    Events,
    busiest_node,
    daemonset,
    deployment,
    namespace,
    pdb,
    per_node,
    ready_counts,
    ready_pods,
    uids,
)

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import build
from chaoslab.faults.base import apply_undo
from chaoslab.lab.config import LabLayout
from chaoslab.targets.lab import LabTarget


@pytest.fixture
def ns(api: KubeApi) -> Iterator[str]:
    with namespace(api, "drain") as name:
        yield name


def unschedulable(api: KubeApi, node: str) -> bool:
    return bool(api.get(f"/api/v1/nodes/{node}")["spec"].get("unschedulable"))


def test_a_pdb_holds_the_drain_until_replacements_are_ready_elsewhere_then_it_completes(
        api: KubeApi, target: LabTarget, ns: str) -> None:
    deployment(api, ns, "web", 6)
    placed = eventually(lambda: ready_pods(api, ns, "web", 6), 90, "6 web pods Ready")
    pdb(api, ns, "web", 5, 1)
    by_node = per_node(placed)
    node = busiest_node(placed)
    assert by_node[node] >= 2, f"the scheduler spread 6 pods as {by_node}"

    fault = build("drain-node", {"nodes": [node], "namespaces": [ns], "retryInterval": "1s", "timeout": "90s"})
    injection = fault.resolve(target, 0)
    assert [u.params for u in injection.undo] == [{"nodes": [node]}]
    events = Events()
    # The lab's pods are Ready the moment they are bound, so a replacement can be Ready before the drain's
    # second eviction arrives, and then no budget ever has to hold anything. With every kube-scheduler
    # paused the first replacement stays Pending: the budget is spent, the next eviction is refused
    # (every time, not by luck), and the drain must wait until the schedulers resume and it is Ready.
    schedulers = [h for h in target.hosts("kube-scheduler") if target.pid("kube-scheduler", h)]
    drained: list[BaseException] = []

    def drain() -> None:
        try:
            fault.inject(target, injection, record=events)  # type: ignore[call-arg]
        except BaseException as exc:  # noqa: BLE001  # re-raised in the test's thread
            drained.append(exc)

    try:
        # Ready web pods, counted all through the drain: the budget (minAvailable 5) allows one disruption at a time.
        with ready_counts(api, ns, "web") as counts:
            for h in schedulers:
                target.signal("kube-scheduler", h, "STOP")
            try:
                thread = threading.Thread(target=drain, name="drain")
                thread.start()
                eventually(lambda: events.of("eviction", outcome="refused") or not thread.is_alive(), 30,
                           "an eviction refused by the budget")
            finally:
                for h in schedulers:
                    target.signal("kube-scheduler", h, "CONT")
            thread.join(120)
        assert not thread.is_alive() and not drained, drained
        assert unschedulable(api, node)
        [drain] = events.of("drain", node=node)
        assert drain["complete"] and drain["evicted"] == by_node[node] and drain["api"] == "policy/v1beta1"
        # Only one disruption at a time: every pod after the first waited for a replacement to be Ready (how
        # many 429s that takes depends on how fast replacements get Ready).
        assert counts and min(counts) >= 5, counts
        assert events.of("eviction", outcome="refused")
        assert all("disruption budget" in e["reason"] for e in events.of("eviction", outcome="refused"))
        assert len(events.of("eviction", outcome="terminated")) == by_node[node]
        after = eventually(lambda: ready_pods(api, ns, "web", 6), 60, "6 web pods Ready again")
        assert node not in {p["spec"]["nodeName"] for p in after}
    finally:
        for undo in injection.undo:
            apply_undo(target, undo)
    assert not unschedulable(api, node)


def test_daemonset_pods_stay_with_ignore_daemonsets_and_refuse_the_drain_without(
        api: KubeApi, target: LabTarget, ns: str) -> None:
    daemonset(api, ns, "agent")
    placed = eventually(lambda: ready_pods(api, ns, "agent", 3), 60, "a DaemonSet pod on each of 3 nodes")
    node = placed[0]["spec"]["nodeName"]
    with pytest.raises(InjectionError, match=r"DaemonSet-managed Pods \(use ignoreDaemonSets to ignore\)"):
        build("drain-node", {"nodes": [node], "namespaces": [ns]}).resolve(target, 0)
    assert not unschedulable(api, node)

    fault = build("drain-node", {"nodes": [node], "namespaces": [ns], "ignoreDaemonSets": True})
    injection = fault.resolve(target, 0)
    events = Events()
    try:
        fault.inject(target, injection, record=events)  # type: ignore[call-arg]
        [skipped] = events.of("eviction", outcome="skipped")
        assert skipped["pod"] == f"{ns}/{placed[0]['metadata']['name']}"
        assert skipped["reason"] == "ignoring DaemonSet-managed Pods"
        time.sleep(2)
        assert placed[0]["metadata"]["uid"] in uids(api, ns, "agent")
    finally:
        for undo in injection.undo:
            apply_undo(target, undo)
    assert not unschedulable(api, node)


def test_an_emptydir_pod_refuses_the_drain_without_consent_and_is_evicted_with_it(
        api: KubeApi, target: LabTarget, ns: str) -> None:
    deployment(api, ns, "cache", 1, emptydir=True)
    [placed] = eventually(lambda: ready_pods(api, ns, "cache", 1), 60, "cache pod Ready")
    node = placed["spec"]["nodeName"]
    with pytest.raises(InjectionError, match=rf"nothing was cordoned: node {node}: cannot delete Pods with local "
                                             rf"storage \(use deleteEmptyDirData to override\): {ns}/"):
        build("drain-node", {"nodes": [node], "namespaces": [ns]}).resolve(target, 0)
    assert not unschedulable(api, node)

    fault = build("drain-node", {"nodes": [node], "namespaces": [ns], "deleteEmptyDirData": True})
    injection = fault.resolve(target, 0)
    events = Events()
    try:
        fault.inject(target, injection, record=events)  # type: ignore[call-arg]
        [evicted] = events.of("eviction", outcome="evicted")
        assert evicted["reason"] == "deleting Pods with local storage"
    finally:
        for undo in injection.undo:
            apply_undo(target, undo)


def test_pods_in_namespaces_the_experiment_does_not_name_are_left_in_place(
        api: KubeApi, target: LabTarget, ns: str) -> None:
    deployment(api, ns, "web", 1)
    [placed] = eventually(lambda: ready_pods(api, ns, "web", 1), 60, "web pod Ready")
    node = placed["spec"]["nodeName"]
    fault = build("drain-node", {"nodes": [node], "namespaces": ["some-other-namespace"]})
    injection = fault.resolve(target, 0)
    events = Events()
    try:
        fault.inject(target, injection, record=events)  # type: ignore[call-arg]
        [skipped] = events.of("eviction", pod=f"{ns}/{placed['metadata']['name']}")
        assert skipped["outcome"] == "skipped" and "protected" in skipped["reason"]
        assert uids(api, ns, "web") == {placed["metadata"]["uid"]}
    finally:
        for undo in injection.undo:
            apply_undo(target, undo)


def test_the_blast_radius_limit_refuses_and_nothing_is_cordoned(api: KubeApi, target: LabTarget) -> None:
    with pytest.raises(SpecError, match="2 nodes asked for but maxNodes is 1"):
        build("drain-node", {"count": 2, "namespaces": ["default"]})
    fault = build("drain-node", {"percent": 100, "maxNodes": 2, "selector": "chaoslab.io/simulated=true",
                                 "namespaces": ["default"]})
    with pytest.raises(InjectionError, match="3 nodes selected .* but maxNodes is 2"):
        fault.resolve(target, 0)
    assert not any(n["spec"].get("unschedulable") for n in api.get("/api/v1/nodes")["items"])


DRAIN = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: drain-interrupted}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready]
  faults:
    - {{kind: drain-node, nodes: [{node}], namespaces: [{ns}], timeout: 5m, retryInterval: 1s}}
  duration: 60s
  probes: [apiserver]
"""


@pytest.mark.slow
def test_ctrl_c_of_a_run_blocked_by_a_pdb_uncordons_at_once(api: KubeApi, lab: LabLayout, ns: str,
                                                             tmp_path: Path) -> None:
    deployment(api, ns, "db", 1)
    [placed] = eventually(lambda: ready_pods(api, ns, "db", 1), 60, "db pod Ready")
    node = placed["spec"]["nodeName"]
    api.create(f"/apis/policy/v1beta1/namespaces/{ns}/poddisruptionbudgets", {
        "apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    eventually(lambda: api.get(f"/apis/policy/v1beta1/namespaces/{ns}/poddisruptionbudgets/db")
               .get("status", {}).get("expectedPods") == 1, 30, "PDB counts the pod")
    exp = tmp_path / "drain.yaml"
    exp.write_text(DRAIN.format(lab=lab.config.name, node=node, ns=ns))
    proc = subprocess.Popen([sys.executable, "-m", "chaoslab.cli", "run", str(exp), "--no-live",
                             "--runs-dir", str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: unschedulable(api, node) or proc.poll() is not None, 60, f"{node} cordoned")
        assert proc.poll() is None, proc.communicate()[0].decode()
        time.sleep(3)  # the drain is now retrying the refused eviction
    finally:
        proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    out = proc.communicate(timeout=30)[0].decode()
    assert time.monotonic() - started < 10, out  # not waiting out the 5 m drain timeout
    assert proc.returncode != 0, out
    assert not unschedulable(api, node), out
    run_dir = next((tmp_path / "runs").iterdir())
    assert not (run_dir / "undo.json").exists()
    events = [json.loads(line) for line in (run_dir / "runs" / "1" / "timeline.jsonl").read_text().splitlines()]
    kinds = [e.get("event") for e in events if "event" in e]
    assert kinds.index("cordon") < kinds.index("revert") and "abort" in kinds
    assert any(e.get("event") == "eviction" and e["detail"]["outcome"] == "refused" for e in events)
    assert placed["metadata"]["uid"] in uids(api, ns, "db")
