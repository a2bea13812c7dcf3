"""Guard rails as pure logic: the allow-list and production pattern, blast radius and quorum, abort
metrics that could never fire, capabilities of an API-only target, managed control planes, the mapping
from Lease holders and etcd members to nodes, and the helper pod's self-reverting script."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import fakes
import pytest

from chaoslab.clients.hosts import Command
from chaoslab.clients.kubeapi import KubeApi, RefreshingToken
from chaoslab.errors import SpecError, TargetError
from chaoslab.faults.base import Injection
from chaoslab.plan.guard import (
    Settings,
    abort_problems,
    allow_problems,
    capability_problems,
    config_path,
    load_settings,
    radius_problems,
)
from chaoslab.spec.model import BlastRadius, Experiment, FaultSpec
from chaoslab.targets import resolve_target
from chaoslab.targets.helperpod import helper_pod, node_for_holder, node_for_member, script
from chaoslab.targets.kubeconfig import EtcdAccess, managed_provider


class FakeTarget(fakes.FakeTarget):
    renewal_window = 5.0

    def __init__(self, context: str = "staging", host: str = "10.0.0.10", provider: str | None = None,
                 etcd: bool = False) -> None:
        self.name = f"kubeconfig context {context!r}"
        self._allow = {"contexts": [context], "hosts": [host]}
        self._provider, self._etcd = provider, etcd

    @property
    def allow_names(self) -> dict[str, list[str]]:
        return self._allow

    def node_level_refusal(self, kind: str) -> str:
        return f"{kind} refused ({self._provider or 'self-managed'})"

    def etcd_refusal(self) -> str | None:
        return None if self._etcd else "no etcd access configured"


def exp(*faults: FaultSpec, radius: BlastRadius | None = None, **kw: Any) -> Experiment:
    return Experiment("e", faults or (FaultSpec("evict-pods", {"namespaces": ["a"]}),), 10.0,
                      blast_radius=radius or BlastRadius(), **kw)


def test_a_cluster_that_is_not_the_lab_is_refused_without_allow_list_or_yes() -> None:
    [problem] = allow_problems(FakeTarget(), Settings(), yes=False)
    assert "is not the lab and is not allowed" in problem and "allow: {contexts: [staging]}" in problem
    assert allow_problems(FakeTarget(), Settings(), yes=True) == []
    assert allow_problems(FakeTarget(), Settings(contexts=("stag*",)), yes=False) == []
    assert allow_problems(FakeTarget(), Settings(hosts=("10.0.0.10",)), yes=False) == []


def test_a_production_context_needs_both_the_allow_list_and_yes() -> None:
    prod = FakeTarget("prod-eu")
    assert "needs both" in allow_problems(prod, Settings(), yes=True)[0]
    assert "pass --yes" in allow_problems(prod, Settings(contexts=("prod-eu",)), yes=False)[0]
    assert allow_problems(prod, Settings(contexts=("prod-eu",)), yes=True) == []
    # The pattern is the user's: here `live` marks production, and `prod` no longer does.
    assert allow_problems(FakeTarget("live-1"), Settings(production_pattern="live"), yes=True)
    assert allow_problems(prod, Settings(production_pattern="live"), yes=True) == []


def test_settings_come_from_chaoslab_config_and_bad_ones_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    assert config_path({"CHAOSLAB_CONFIG": str(path)}) == path
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "chaoslab" / "config.yaml"
    assert load_settings(path) == Settings()
    path.write_text("allow: {contexts: [a], hosts: [h]}\nproductionPattern: 'live|prd'\n")
    assert load_settings(path) == Settings(("a",), ("h",), "live|prd", path)
    path.write_text("allow: {context: [a]}\nproductionPattern: '('\nextra: 1\n")
    with pytest.raises(SpecError) as err:
        load_settings(path)
    assert len(err.value.problems) == 3


def inj(fault: str, *targets: str, component: str = "etcd") -> Injection:
    return Injection(fault, 0, component, "x", targets, ())


def test_losing_etcd_quorum_needs_allow_quorum_loss() -> None:
    kill_two = [inj("kill-process", "etcd@cp1"), inj("partition", "etcd@cp2")]
    [problem] = radius_problems(exp(), kill_two, members=3, target=fakes.FakeTarget())
    assert "allowQuorumLoss" in problem and "leaving 1, fewer than the majority of 2" in problem
    assert radius_problems(exp(radius=BlastRadius(allowQuorumLoss=True)), kill_two, members=3, target=fakes.FakeTarget()) == []
    # One of three, or two of five, keeps the quorum; a degraded member is still in it.
    assert radius_problems(exp(), kill_two[:1], members=3, target=fakes.FakeTarget()) == []
    assert radius_problems(exp(), kill_two, members=5, target=fakes.FakeTarget()) == []
    assert radius_problems(exp(), [inj("network-degrade", "etcd@cp1", "etcd@cp2")], members=3, target=fakes.FakeTarget()) == []


def test_filling_etcd_outside_the_lab_needs_allow_nospace() -> None:
    full = [inj("etcd-nospace", "etcd@cp1", "etcd@cp2", "etcd@cp3")]
    [problem] = radius_problems(exp(), full, members=3, target=FakeTarget("staging"))  # type: ignore[arg-type]
    assert "allowNospace" in problem and "read-only" in problem
    assert radius_problems(exp(radius=BlastRadius(allowNospace=True)), full, members=3,
                           target=FakeTarget("staging")) == []  # type: ignore[arg-type]
    lab = fakes.FakeTarget()
    lab.is_lab = True
    assert radius_problems(exp(), full, members=3, target=lab) == []  # the lab


def test_the_blast_radius_limits_nodes_pods_and_members() -> None:
    radius = BlastRadius(maxNodes=1, maxPods=2, maxMembers=0)
    plan = [inj("drain-node", "node@n1", "node@n2", component="node"),
            inj("evict-pods", "pod@a/p1", "pod@a/p2", "pod@a/p3", component="pod"),
            inj("network-degrade", "etcd@cp1")]
    problems = radius_problems(exp(radius=radius), plan, members=3, target=fakes.FakeTarget())
    assert [p.split(":")[0] for p in problems] == ["spec.blastRadius.maxNodes", "spec.blastRadius.maxPods",
                                                  "spec.blastRadius.maxMembers"]
    assert radius_problems(exp(radius=BlastRadius(maxNodes=2, maxPods=3, maxMembers=1)), plan, members=3, target=fakes.FakeTarget()) == []


def test_abort_conditions_that_are_not_live_are_refused() -> None:
    [problem] = abort_problems(exp(abort={"recoveryTime": 30.0, "apiserverUnavailable": 10.0}))
    assert problem.startswith("spec.abort.recoveryTime: not measured while the run goes on")


def test_an_api_only_target_refuses_node_level_faults_and_etcd_probes() -> None:
    e = exp(FaultSpec("kill-process", {"component": "etcd"}, "x.yaml:3"), FaultSpec("evict-pods", {}))
    problems = capability_problems(e, FakeTarget(), [{"kind": "etcd"}, {"kind": "lease"}])
    assert problems == ["x.yaml:3: kill-process refused (self-managed)", "probes etcd: no etcd access configured"]
    # Without the etcd probe, a steady state that needs it is refused too.
    [problem] = capability_problems(exp(steady_state=("etcd-quorum",)), FakeTarget(), [{"kind": "lease"}])
    assert problem.startswith("steady state etcd-quorum needs the etcd probe")
    assert capability_problems(exp(), FakeTarget(etcd=True), [{"kind": "etcd"}]) == []


def test_managed_control_planes_are_recognised_from_version_or_node_labels() -> None:
    assert managed_provider("v1.27.4-eks-2d98532") == "EKS"
    assert managed_provider("v1.27.3-gke.100") == "GKE"
    assert managed_provider("v1.28.1", [{"kubernetes.azure.com/cluster": "MC_x"}]) == "AKS"
    assert managed_provider("v1.28.1", [{"eks.amazonaws.com/nodegroup": "ng"}]) == "EKS"
    assert managed_provider("v1.28.1", [{"cloud.google.com/gke-nodepool": "p"}]) == "GKE"
    assert managed_provider("v1.20.2", [{"kubernetes.io/hostname": "cp1"}]) is None


def node(name: str, hostname: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": hostname or name}}}


def test_lease_holders_and_etcd_members_map_to_nodes_explicitly() -> None:
    nodes = [node("cp-1.example.com", "cp-1"), node("cp-2.example.com", "cp-2"), node("worker-1")]
    assert node_for_holder("cp-1_7d3c2b1a-0000-4000-8000-000000000000", nodes) == "cp-1.example.com"
    assert node_for_member("cp-2.example.com", nodes) == "cp-2.example.com"
    # By short name when the label does not say (FQDN node names, short hostnames).
    assert node_for_member("worker-1", [node("worker-1.lan", "x")]) == "worker-1.lan"
    with pytest.raises(TargetError, match="no node is host 'cp-9'"):
        node_for_holder("cp-9_abc", nodes)
    with pytest.raises(TargetError, match="matches several nodes"):
        node_for_member("cp", [node("cp.a", "x"), node("cp.b", "y")])
    with pytest.raises(TargetError, match="names no host"):
        node_for_holder("", nodes)


def test_the_helper_pod_is_pinned_privileged_tolerant_and_ends_itself() -> None:
    pod = helper_pod("h", "cp-1", [Command(("pkill", "-STOP", "-o", "-x", "etcd"))],
                     [Command(("pkill", "-CONT", "-x", "etcd"))], 30)
    spec = pod["spec"]
    assert spec["nodeName"] == "cp-1" and spec["hostPID"] and spec["hostNetwork"]
    assert spec["activeDeadlineSeconds"] == 90 and spec["containers"][0]["securityContext"]["privileged"]
    keys = {t.get("key") for t in spec["tolerations"]}
    assert {"node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane"} <= keys


def test_the_helper_script_undoes_after_its_duration_and_on_term(tmp_path: Path) -> None:
    log = tmp_path / "log"
    text = script([Command(("sh", "-c", f"echo applied >> {log}"))], [Command(("sh", "-c", f"echo undone >> {log}"))], 0)
    assert subprocess.run(["sh", "-c", text], check=False, timeout=10).returncode == 0
    assert log.read_text().split() == ["applied", "undone"]
    # Deleted (TERM) while the fault holds: the undo runs at once, once.
    log.unlink()
    proc = subprocess.Popen(["sh", "-c", script([Command(("sh", "-c", f"echo applied >> {log}"))],
                                               [Command(("sh", "-c", f"echo undone >> {log}"))], 61)])
    deadline = time.monotonic() + 5
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the hold
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)
    assert log.read_text().split() == ["applied", "undone"]
    assert subprocess.run(["pgrep", "-fx", "sleep 61"], check=False).returncode == 1, "the hold's sleep is left"
    # Arguments are quoted one by one: text never becomes shell syntax.
    assert "'a; rm -rf /'" in script([Command(("echo", "a; rm -rf /"))], [], 1)


def test_the_helper_script_feeds_a_commands_stdin_exactly_and_quoted(tmp_path: Path) -> None:
    """An iptables-restore transaction reaches the command byte for byte, and no line of it is shell syntax."""
    got = tmp_path / "got"
    stdin = f"*filter\n-N CHAOSLAB-t\n$(touch {tmp_path / 'pwned'}) `x` 'q' \"d\" ; | &\n\nCOMMIT\n"
    text = script([Command(("sh", "-c", f"cat > {got}"), stdin=stdin)], [], 0)
    assert subprocess.run(["sh", "-c", text], check=False, timeout=10).returncode == 0
    assert got.read_text() == stdin
    assert not (tmp_path / "pwned").exists()
    # A failing command with stdin sets the script's status like any other.
    text = script([Command(("sh", "-c", "cat >/dev/null; exit 3"), stdin="x\n")], [], 0)
    assert "applied rc=1" in subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False,
                                            timeout=10).stdout


def test_etcd_access_and_target_names_are_checked() -> None:
    assert EtcdAccess.from_params(None) is None
    with pytest.raises(SpecError, match="missing cert, key"):
        EtcdAccess.from_params({"endpoints": ["https://a:2379"], "ca": "ca"})
    with pytest.raises(SpecError, match="give each as https://HOST:PORT"):
        EtcdAccess.from_params({"endpoints": ["a:2379"], "ca": "c", "cert": "c", "key": "k"})
    with pytest.raises(SpecError, match="target kind 'gke' is not supported"):
        resolve_target("gke")
    with pytest.raises(SpecError, match="unknown field"):
        resolve_target(None, "kubeconfig", {"contxt": "x"})


def test_in_cluster_config_reads_the_mounted_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("secret-token\n")
    (tmp_path / "ca.crt").write_text("ca")
    api = KubeApi.in_cluster(tmp_path, environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                                "KUBERNETES_SERVICE_PORT": "443"})
    assert api.server == "https://10.96.0.1:443" and isinstance(api.session.auth, RefreshingToken)
    assert api.session.auth.token() == "secret-token"
    with pytest.raises(TargetError, match="not a pod"):
        KubeApi.in_cluster(tmp_path, environ={})
