"""node-failure on the real lab: a simulated node stops heartbeating, the real node-lifecycle controller
marks it NotReady and, after the pods' tolerations expire (the test lab: 20 s default), evicts its pods,
whose replacements become Ready on other nodes; revert (also after Ctrl-C of a run, or `chaoslab recover`
after a killed one) restores the heartbeat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import chaoslab, recover
from waiting import eventually
from workloads import Events, busiest_node, deployment, namespace, ready_pods

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError
from chaoslab.faults import build
from chaoslab.faults.base import apply_undo
from chaoslab.faults.node_failure import ready
from chaoslab.lab.config import LabLayout
from chaoslab.targets.lab import LabTarget

EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: node-failure-interrupted}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready]
  faults:
    - {{kind: node-failure, nodes: [{node}]}}
  duration: 120s
  probes: [apiserver]
"""


@pytest.fixture
def target(lab: LabLayout) -> Iterator[LabTarget]:
    target = LabTarget(lab)
    yield target
    for node in target.simulated_nodes():  # whatever a failed test left stopped
        target.stop_heartbeat(node, stopped=False)


@pytest.fixture
def ns(api: KubeApi, target: LabTarget) -> Iterator[str]:
    with namespace(api, "nodefail", gone_within=120) as name:
        try:
            yield name
        finally:
            for node in target.simulated_nodes():
                target.stop_heartbeat(node, stopped=False)


def node_ready(api: KubeApi, node: str) -> str:
    return ready(api.get(f"/api/v1/nodes/{node}"))


def all_nodes_ready(api: KubeApi, target: LabTarget) -> bool:
    return all(node_ready(api, n) == "True" for n in target.simulated_nodes())


@pytest.mark.slow
def test_a_failed_node_turns_not_ready_and_its_pods_are_rescheduled_elsewhere_then_revert_revives_it(
        api: KubeApi, target: LabTarget, ns: str) -> None:
    eventually(lambda: all_nodes_ready(api, target), 60, "every node Ready")
    deployment(api, ns, "web", 6)
    placed = eventually(lambda: ready_pods(api, ns, "web", 6), 90, "6 web pods Ready")
    node = busiest_node(placed)
    on_node = {p["metadata"]["uid"] for p in placed if p["spec"]["nodeName"] == node}
    fault = build("node-failure", {"nodes": [node]})
    injection = fault.resolve(target, 0)
    assert [(u.action, dict(u.params)) for u in injection.undo] == [("resume-heartbeat", {"nodes": [node]})]
    events = Events()
    started = time.monotonic()
    try:
        fault.inject(target, injection, record=events)  # type: ignore[call-arg]
        assert events.of("heartbeat", node=node, stopped=True) and target.heartbeat_stopped(node)
        eventually(lambda: node_ready(api, node) != "True", 90, f"{node} NotReady")
        not_ready = time.monotonic() - started
        eventually(lambda: any(t.get("key") == "node.kubernetes.io/unreachable" and t.get("effect") == "NoExecute"
                               for t in api.get(f"/api/v1/nodes/{node}")["spec"].get("taints") or []),
                   30, f"{node} tainted unreachable:NoExecute")
        tainted = time.monotonic() - started
        after = eventually(lambda: (got := ready_pods(api, ns, "web", 6)) and
                           all(p["spec"]["nodeName"] != node for p in got) and got, 120,
                           "6 web pods Ready on the other nodes")
        moved = time.monotonic() - started
        assert not on_node & {p["metadata"]["uid"] for p in after}
        print(f"node-failure {node} ({len(on_node)} pods): NotReady after {not_ready:.1f} s, tainted after "
              f"{tainted:.1f} s, pods Ready elsewhere after {moved:.1f} s")
        assert node_ready(api, node) != "True"
    finally:
        for undo in injection.undo:
            apply_undo(target, undo)
    assert not target.heartbeat_stopped(node)
    eventually(lambda: node_ready(api, node) == "True", 60, f"{node} Ready again")
    # The revived kubelet finishes what the eviction started: the old pods leave the node.
    eventually(lambda: not on_node & {p["metadata"]["uid"] for p in
                                      api.get(f"/api/v1/namespaces/{ns}/pods")["items"]}, 60, "evicted pods gone")


def test_the_blast_radius_refuses_and_no_heartbeat_stops(target: LabTarget) -> None:
    fault = build("node-failure", {"percent": 100, "maxNodes": 2, "selector": "chaoslab.io/simulated=true"})
    with pytest.raises(InjectionError, match="3 nodes selected .* but maxNodes is 2"):
        fault.resolve(target, 0)
    assert not any(target.heartbeat_stopped(n) for n in target.simulated_nodes())


def start_run(lab: LabLayout, node: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    exp = tmp_path / "node-failure.yaml"
    exp.write_text(EXPERIMENT.format(lab=lab.config.name, node=node))
    return subprocess.Popen(chaoslab("run", str(exp), "--no-live",
                             "--runs-dir", str(tmp_path / "runs")), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_stopped(target: LabTarget, node: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not target.heartbeat_stopped(node):
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, "the heartbeat was never stopped"
        time.sleep(0.1)


@pytest.mark.slow
def test_ctrl_c_of_a_run_restores_the_heartbeat(lab: LabLayout, api: KubeApi, target: LabTarget,
                                                tmp_path: Path) -> None:
    node = target.simulated_nodes()[-1]
    eventually(lambda: node_ready(api, node) == "True", 60, f"{node} Ready")
    proc = start_run(lab, node, tmp_path)
    wait_stopped(target, node, proc)
    eventually(lambda: node_ready(api, node) != "True", 90, f"{node} NotReady")
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode != 0, out
    assert not target.heartbeat_stopped(node), out
    run_dir = next((tmp_path / "runs").iterdir())
    assert not (run_dir / "undo.json").exists()
    kinds = [e.get("event") for e in map(json.loads, (run_dir / "runs" / "1" / "timeline.jsonl").read_text()
                                         .splitlines()) if "event" in e]
    assert kinds.index("heartbeat") < kinds.index("revert") and "abort" in kinds
    eventually(lambda: node_ready(api, node) == "True", 60, f"{node} Ready again")


@pytest.mark.slow
def test_a_killed_run_leaves_resume_heartbeat_for_chaoslab_recover(lab: LabLayout, target: LabTarget,
                                                                   tmp_path: Path) -> None:
    node = target.simulated_nodes()[0]
    proc = start_run(lab, node, tmp_path)
    wait_stopped(target, node, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = next((tmp_path / "runs").iterdir())
    [pending] = json.loads((run_dir / "undo.json").read_text())
    assert pending["undo"] == [{"action": "resume-heartbeat", "params": {"nodes": [node]}}]
    assert target.heartbeat_stopped(node)
    result = recover(run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not target.heartbeat_stopped(node)
    assert not (run_dir / "undo.json").exists()
