"""The lab is a real HA control plane: quorum, leader election, restarts, scheduling, node lifecycle."""

from __future__ import annotations

import json
import os
import signal
import uuid
from typing import Any

import pytest
from waiting import eventually

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.clients.leaders import holder_host
from chaoslab.errors import LabError
from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.install import find_binaries
from chaoslab.lab.lifecycle import up
from chaoslab.lab.status import LEADER_LEASES, collect


def processes(lab: LabLayout) -> dict[str, Any]:
    return json.loads(lab.status_file.read_text())["processes"]  # type: ignore[no-any-return]


def test_etcd_has_a_quorum_of_three_members_agreeing_on_one_leader(lab: LabLayout) -> None:
    st = collect(lab)
    assert len(st.etcd) == 3
    leaders = {s.leader_name for s in st.etcd.values() if not isinstance(s, str)}
    assert leaders == {st.etcd_leader} and st.etcd_leader in {"cp1", "cp2", "cp3"}
    assert sum(1 for s in st.etcd.values() if not isinstance(s, str) and s.is_leader) == 1


def test_scheduler_and_controller_manager_leases_are_held_by_a_host(lab: LabLayout) -> None:
    st = collect(lab)
    for name in LEADER_LEASES:
        assert holder_host(st.leases[name]) in {"cp1", "cp2", "cp3"}, st.leases


def test_every_apiserver_is_ready_behind_the_load_balancer(lab: LabLayout, api: KubeApi) -> None:
    assert collect(lab).apiservers == {"cp1": True, "cp2": True, "cp3": True}
    assert api.request("GET", "/readyz").status_code == 200


def test_killed_component_is_restarted_by_the_supervisor(lab: LabLayout, api: KubeApi) -> None:
    before = processes(lab)["kube-apiserver@cp2"]
    os.kill(before["pid"], signal.SIGKILL)
    after = eventually(lambda: (p := processes(lab)["kube-apiserver@cp2"])["pid"] not in (None, before["pid"])
                       and p, 15, "apiserver restarted")
    assert after["restarts"] == before["restarts"] + 1 and after["last_exit"] == "signal SIGKILL"
    eventually(lambda: collect(lab).apiservers["cp2"], 60, "restarted apiserver ready")


def test_scheduler_binds_a_deployments_pods_to_simulated_nodes_and_they_become_ready(
        lab: LabLayout, api: KubeApi) -> None:
    name = f"web-{uuid.uuid4().hex[:6]}"
    labels = {"app": name}
    api.create("/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 6, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}})
    try:
        def ready_pods() -> list[dict[str, Any]] | None:
            pods = api.get("/api/v1/namespaces/default/pods", labelSelector=f"app={name}")["items"]
            ok = [p for p in pods if p["status"].get("phase") == "Running" and any(
                c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
            return ok if len(ok) == 6 else None

        pods = eventually(ready_pods, 90, "6 pods Running and Ready")
        assert {p["spec"]["nodeName"] for p in pods} <= {f"{lab.config.name}-node-{i}" for i in (1, 2, 3)}
        deploy = api.get(f"/apis/apps/v1/namespaces/default/deployments/{name}")
        eventually(lambda: api.get(f"/apis/apps/v1/namespaces/default/deployments/{name}")["status"].get(
            "readyReplicas") == 6, 30, "deployment reports 6 ready replicas")
        assert deploy["spec"]["replicas"] == 6
    finally:
        api.delete(f"/apis/apps/v1/namespaces/default/deployments/{name}", propagationPolicy="Foreground")
    eventually(lambda: not api.get("/api/v1/namespaces/default/pods", labelSelector=f"app={name}")["items"],
               60, "pods deleted after the deployment")


def node_ready(api: KubeApi, name: str) -> str:
    node = api.get(f"/api/v1/nodes/{name}")
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


@pytest.mark.slow
def test_stopping_a_nodes_heartbeat_makes_the_node_lifecycle_controller_mark_it_not_ready(
        lab: LabLayout, api: KubeApi) -> None:
    paused = lab.nodes_control_dir / f"{lab.config.name}-node-3"
    paused.touch()
    try:
        eventually(lambda: node_ready(api, f"{lab.config.name}-node-3") == "Unknown", 60, "node NotReady (Unknown)")
        assert node_ready(api, f"{lab.config.name}-node-1") == "True"
    finally:
        paused.unlink()
    eventually(lambda: node_ready(api, f"{lab.config.name}-node-3") == "True", 30, "node Ready again after resume")


def test_a_second_lab_with_the_same_name_or_ports_is_refused(lab: LabLayout) -> None:
    with pytest.raises(LabError, match="already up"):
        up(lab.config, find_binaries())
    with pytest.raises(LabError, match=f"ports {lab.config.port_base}.* in use"):
        up(LabConfig(name=lab.config.name + "2", port_base=lab.config.port_base), find_binaries())
