"""partition and network-degrade through helper pods, against a fake API: one pod per host with rules,
`delete-pod` undo per pod named before it exists, the host's netrules commands as the pod's program, and
the plan showing the pods. The program itself runs in a lab namespace in
tests/integration/test_helper_pod_scripts.py."""

from __future__ import annotations

import random
import shlex
from typing import Any

import pytest
from test_helper_pod_flow import FakeApi, events

from chaoslab.errors import InjectionError
from chaoslab.faults.base import apply_undo
from chaoslab.faults.degrade import DegradeParams, NetworkDegrade
from chaoslab.faults.partition import PartitionFault, PartitionParams
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import make_plan
from chaoslab.spec.loader import load_text
from chaoslab.targets.helperpod import HelperPods, HelperPodSettings
from chaoslab.targets.kubeconfig import KubeconfigTarget

NODES = [{"metadata": {"name": f"cp-{i}", "labels": {"kubernetes.io/hostname": f"cp-{i}"}},
          "status": {"addresses": [{"type": "InternalIP", "address": f"fd00::{i}"},
                                   {"type": "InternalIP", "address": f"10.0.0.1{i}"},
                                   {"type": "Hostname", "address": f"cp-{i}"}]}} for i in (1, 2, 3)]


class NetApi(FakeApi):
    """Three control-plane nodes with etcd static pods; every helper pod's log follows `logs`."""

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path == "/api/v1/nodes":
            return {"items": NODES}
        if path == "/api/v1/namespaces/kube-system/pods":
            return {"items": [{"spec": {"nodeName": n["metadata"]["name"]}} for n in NODES]}
        return super().get(path, **params)


def target(api: NetApi, helper: HelperPodSettings | None = None) -> KubeconfigTarget:
    t = KubeconfigTarget(api, context="staging",  # type: ignore[arg-type]
                         helper=helper or HelperPodSettings(namespace="chaos", interface="eth0"))
    t.helper_pods = lambda: HelperPods(api, t.helper, sleep=lambda s: None) if t.helper else None  # type: ignore[method-assign]
    return t


def program(pod: dict[str, Any]) -> str:
    return str(pod["spec"]["containers"][0]["command"][2])


def test_a_partition_names_one_pod_per_host_before_any_exists_and_each_runs_that_hosts_rules() -> None:
    api = NetApi(["applied rc=0"])
    t = target(api)
    fault = PartitionFault(PartitionParams(shape="isolate", select="host:cp-1", traffic="peer"), duration=20)
    inj = fault.resolve(t, 0)
    assert inj.targets == ("etcd@cp-1",) and not api.pods, "resolve creates nothing"
    assert [u.action for u in inj.undo] == ["delete-pod"] * 3
    assert [(u.params["host"], u.params["node"]) for u in inj.undo] == [("cp-1", "cp-1"), ("cp-2", "cp-2"),
                                                                        ("cp-3", "cp-3")]
    assert len({u.params["name"] for u in inj.undo}) == 3 and all(u.params["namespace"] == "chaos" for u in inj.undo)
    tag = inj.undo[0].params["tag"]
    seen, record = events()
    fault.inject(t, inj, record=record)
    assert [k for k, _ in seen] == ["helper-pod-created"] * 3 + ["helper-pod-applied"] * 3
    pods = {p["spec"]["nodeName"]: p for p in api.pods.values()}
    assert sorted(pods) == ["cp-1", "cp-2", "cp-3"]
    assert all(p["spec"]["hostNetwork"] and p["spec"]["activeDeadlineSeconds"] == 80 for p in pods.values())
    # cp-1 drops its peers' port 2380 both ways; cp-2 drops only cp-1 (the IPv4 InternalIP, not the IPv6 one).
    one, two = program(pods["cp-1"]), program(pods["cp-2"])
    # One transaction per pod: the rules piped into iptables-restore, each line quoted.
    assert f"'-A CHAOSLAB-{tag} -s 10.0.0.12 -p tcp --dport 2380 -j DROP'" in one
    assert one.count("| iptables-restore -w --noflush || rc=1") == 1 and "iptables -w -A" not in one
    assert "-d 10.0.0.13" in one and "10.0.0.13" not in two and "fd00" not in one + two
    assert f"iptables -w -X CHAOSLAB-{tag} || rc=1" in two  # its heal, run on TERM or after 20 s
    assert "sleep 20 &" in two
    for u in inj.undo:
        apply_undo(t, u)
    assert not api.pods and len(api.deleted) == 3


def test_a_pod_whose_rules_fail_fails_the_injection() -> None:
    api = NetApi(["applied rc=1"])
    t = target(api)
    fault = PartitionFault(PartitionParams(shape="isolate", select="host:cp-2"), duration=20)
    with pytest.raises(InjectionError, match=r"helper pod chaos/chaoslab-partition-0-0-\w+ on node cp-1 .*applied rc=1"):
        fault.inject(t, fault.resolve(t, 0))


def test_a_partition_by_host_needs_no_etcd_access_but_by_leader_does() -> None:
    t = target(NetApi([]))
    PartitionFault(PartitionParams(select="random"), rng=random.Random(1)).resolve(t, 0)
    with pytest.raises(Exception, match="no etcd access configured"):
        PartitionFault(PartitionParams(select="leader")).resolve(t, 0)


def test_clients_cannot_be_cut_through_the_api() -> None:
    t = target(NetApi([]))
    with pytest.raises(Exception, match="`clients: true` is not supported here"):
        PartitionFault(PartitionParams(select="host:cp-1", clients=True)).resolve(t, 0)


def test_network_degrade_runs_loss_and_netem_in_one_pod_on_the_degraded_host() -> None:
    api = NetApi(["applied rc=0"])
    t = target(api)
    fault = NetworkDegrade(DegradeParams(select="host:cp-2", loss=5, delay="300ms"), duration=15)
    inj = fault.resolve(t, 1)
    [undo] = inj.undo
    assert undo.action == "delete-pod" and undo.params["node"] == "cp-2" and undo.params["device"] == "eth0"
    seen, record = events()
    fault.inject(t, inj, record=record)
    [pod] = api.pods.values()
    text = program(pod)
    tag = undo.params["tag"]
    assert "--probability 0.0500 -j DROP" in text and "-d 10.0.0.11" in text and "-s 10.0.0.13" in text
    assert "tc qdisc replace dev eth0 root handle 1: prio bands 4" in text and "delay 300ms" in text
    heal = text.split("undo() {", 1)[1].split("}", 1)[0]
    assert f"iptables -w -X CHAOSLAB-{tag}" in heal and "tc qdisc del dev eth0 root" in heal
    assert [k for k, _ in seen] == ["helper-pod-created", "helper-pod-applied", "degrade"]
    assert seen[2][1]["mechanism"] == "netem"


def test_a_delay_without_an_interface_is_refused_and_loss_alone_needs_none() -> None:
    t = target(NetApi(["applied rc=0"]), helper=HelperPodSettings(namespace="chaos"))
    with pytest.raises(InjectionError, match="helperPod.interface"):
        NetworkDegrade(DegradeParams(select="host:cp-1", delay="1s"), duration=5).resolve(t, 0)
    fault = NetworkDegrade(DegradeParams(select="host:cp-1", loss=10), duration=5)
    inj = fault.resolve(t, 0)
    fault.inject(t, inj)
    assert "tc " not in program(next(iter(t._api.pods.values())))  # type: ignore[attr-defined]


def test_node_level_faults_through_helper_pods_are_allowed_except_node_failure() -> None:
    t = target(NetApi([]))
    for kind in ("kill-process", "partition", "network-degrade"):
        assert t.node_level_refusal(kind) is None, kind
    assert "helper pods run kill-process, partition, network-degrade, disk-latency only" in str(t.node_level_refusal("node-failure"))
    bare = target(NetApi([]))
    bare.helper = None
    assert "spec.target.helperPod" in str(bare.node_level_refusal("partition"))


EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: pod-partition}
spec:
  faults:
    - {kind: partition, shape: isolate, select: "host:cp-3", traffic: peer}
  steadyState: [apiserver-ready]
  duration: 10s
  probes: [apiserver]
"""


def test_the_plan_shows_every_pod_its_commands_and_its_undo() -> None:
    api = NetApi([])
    t = target(api)
    [exp] = load_text(EXPERIMENT, "x.yaml")
    plan = make_plan(exp, t, [{"kind": "apiserver"}], settings=Settings(), yes=True)
    assert not plan.refusals, plan.refusals
    [fp] = plan.faults
    assert [p["spec"]["nodeName"] for p in fp.helper_pods] == ["cp-1", "cp-2", "cp-3"]
    assert fp.actions[0].startswith("create privileged pod chaos/chaoslab-partition-0-0-")
    assert "on node cp-1 (cp-1), holding 10 s then healing:" in fp.actions[0]
    rule = next(i for i, line in enumerate(fp.actions) if "-s 10.0.0.13" in line)
    assert shlex.split(fp.actions[rule].split(": ", 1)[1])[0] == "-A"
    assert fp.actions[1] == "  cp-1: iptables-restore -w --noflush <<EOF" and fp.actions[2] == "  cp-1:   *filter"
    assert len(fp.undo) == 3 and fp.undo[0].startswith("delete pod chaos/chaoslab-partition-0-0-")
    assert "on TERM its script runs: iptables -w -D INPUT" in fp.undo[0]
    assert fp.injection is not None and [u["action"] for u in fp.injection["undo"]] == ["delete-pod"] * 3
    assert not api.pods, "a plan creates nothing"
