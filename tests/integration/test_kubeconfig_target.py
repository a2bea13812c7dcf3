"""The kubeconfig target on the real lab, with exactly the least-privilege roles of deploy/rbac: a
ServiceAccount gets them, its token goes into a kubeconfig, and an experiment (evict-pods, drain-node and
the API probes) runs through it and passes; without one rule the fault fails with a 403 naming the fix.
The run directory never holds the token or key material. The guard rails refuse on the real cluster, and
the helper pod spec passes the real apiserver's validation (server-side dry run)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from waiting import eventually
from workloads import deployment, namespace, ready_pods

from chaoslab.cli import main
from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import InjectionError
from chaoslab.faults import build, netpods
from chaoslab.faults.netrules import Command, heal_partition
from chaoslab.lab.config import LabLayout
from chaoslab.targets.helperpod import HelperPodSettings, kill_script, pod_manifest
from chaoslab.targets.kubeconfig import KubeconfigTarget

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac"
FILES = ("00-account.yaml", "probes.yaml", "workloads.yaml", "evict-pods.yaml", "drain-node.yaml")
RBAC_API = "/apis/rbac.authorization.k8s.io/v1"


def path_of(doc: dict[str, Any]) -> str:
    """The collection path of a manifest."""
    ns = doc["metadata"].get("namespace")
    return {"Namespace": "/api/v1/namespaces", "ServiceAccount": f"/api/v1/namespaces/{ns}/serviceaccounts",
            "ClusterRole": f"{RBAC_API}/clusterroles", "ClusterRoleBinding": f"{RBAC_API}/clusterrolebindings",
            "Role": f"{RBAC_API}/namespaces/{ns}/roles", "RoleBinding": f"{RBAC_API}/namespaces/{ns}/rolebindings",
            }[doc["kind"]]


def manifests() -> list[dict[str, Any]]:
    return [d for f in FILES for d in yaml.safe_load_all((RBAC / f).read_text()) if d]


def apply(api: KubeApi, doc: dict[str, Any]) -> None:
    try:
        api.create(path_of(doc), doc)
    except ApiError as exc:
        if exc.status != 409:
            raise
        api.replace(f"{path_of(doc)}/{doc['metadata']['name']}", doc)


@pytest.fixture(scope="module")
def account(lab: LabLayout, api: KubeApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(kubeconfig with the chaoslab ServiceAccount's token, the token)."""
    docs = manifests()
    for doc in docs:
        apply(api, doc)

    def token() -> str | None:
        # 1.20: the token controller creates the ServiceAccount's token Secret.
        sa = api.get("/api/v1/namespaces/chaoslab/serviceaccounts/chaoslab")
        for ref in sa.get("secrets") or []:
            secret = api.get(f"/api/v1/namespaces/chaoslab/secrets/{ref['name']}")
            if secret.get("data", {}).get("token"):
                return base64.b64decode(secret["data"]["token"]).decode()
        return None

    value = eventually(token, 30, "the ServiceAccount's token Secret")
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab-sa",
        "clusters": [{"name": "lab", "cluster": {"server": lab.apiserver_url,
                                                 "certificate-authority": str(lab.pki_dir / "ca.crt")}}],
        "users": [{"name": "chaoslab", "user": {"token": value}}],
        "contexts": [{"name": "lab-sa", "context": {"cluster": "lab", "user": "chaoslab"}},
                     {"name": "prod-eu", "context": {"cluster": "lab", "user": "chaoslab"}}]}))
    yield path, value
    for doc in reversed(docs):
        api.delete(f"{path_of(doc)}/{doc['metadata']['name']}")


@pytest.fixture
def ns(api: KubeApi) -> Iterator[str]:
    with namespace(api, "kc") as name:
        yield name


@pytest.fixture(autouse=True)
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSLAB_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def experiment(tmp_path: Path, kubeconfig: Path, ns: str, **spec: Any) -> Path:
    doc = {"apiVersion": "chaoslab.io/v1alpha1", "kind": "Experiment", "metadata": {"name": "kc-api-faults"},
           "spec": {"target": {"kind": "kubeconfig", "kubeconfig": str(kubeconfig), "context": "lab-sa"},
                    "steadyState": ["apiserver-ready", "scheduler-leader", "controller-manager-leader", "scheduling"],
                    "faults": [{"kind": "evict-pods", "namespaces": [ns], "selector": "app=web", "count": 1},
                               {"kind": "drain-node", "selector": "chaoslab.io/simulated=true", "namespaces": [ns],
                                "timeout": "60s", "retryInterval": "1s"}],
                    "blastRadius": {"maxNodes": 1, "maxPods": 1},
                    "duration": "5s", "settle": "3s", "recoveryTimeout": "90s",
                    "probes": ["lease", "apiserver", "canary", "kube-sequence", {"kind": "workloads"}],
                    "slo": {"recoveryTime": {"max": "90s"}, "apiserverUnavailable": {"max": "0s"}}, **spec}}
    path = tmp_path / f"experiment-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_an_experiment_runs_with_only_the_shipped_roles_and_leaves_no_secret_behind(
        lab: LabLayout, api: KubeApi, account: tuple[Path, str], ns: str, tmp_path: Path) -> None:
    kubeconfig, token = account
    deployment(api, ns, "web", 3)
    eventually(lambda: ready_pods(api, ns, "web", 3), 60, "3 pods Ready")
    runs = tmp_path / "runs"
    assert main(["run", str(experiment(tmp_path, kubeconfig, ns)), "--runs-dir", str(runs), "--no-live",
                 "--yes"]) == 0
    [run_dir] = runs.iterdir()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["passed"], verdict
    records = [json.loads(line) for line in (run_dir / "runs" / "1" / "timeline.jsonl").read_text().splitlines()]
    probes = {r.get("probe") for r in records}
    assert {"lease", "apiserver", "canary", "kube-sequence", "workloads"} <= probes, probes
    assert not [r for r in records if "forbidden" in json.dumps(r).lower()], "something was forbidden"
    drains = [r["detail"] for r in records if r.get("event") == "drain"]
    evicts = [r["detail"] for r in records if r.get("event") == "evict"]
    assert drains and evicts, sorted({r["event"] for r in records if "event" in r})
    assert all(r["complete"] for r in drains + evicts), drains + evicts
    assert json.loads((run_dir / "target.json").read_text())["kind"] == "kubeconfig"
    # No token, no key material anywhere in the run directory.
    keys = [line for f in ("admin.key", "ca.key", "sa.key") for line in (lab.pki_dir / f).read_text().splitlines()
            if line and not line.startswith("-----")]
    needles = [token, token[-40:], base64.b64encode(token.encode()).decode()[:40], "PRIVATE KEY", *keys[:3]]
    for f in run_dir.rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            leaked = [n[:12] for n in needles if n in text]
            assert not leaked, f"{f} holds secret material: {leaked}"


def test_without_the_eviction_rule_evict_pods_fails_with_a_403_that_names_the_fix(
        api: KubeApi, account: tuple[Path, str], ns: str) -> None:
    kubeconfig, _ = account
    docs = {d["metadata"]["name"] + d["kind"]: d for d in manifests()}
    role, drain_binding = docs["chaoslab-evict-podsClusterRole"], docs["chaoslab-drain-nodeClusterRoleBinding"]
    deployment(api, ns, "web", 1)
    eventually(lambda: ready_pods(api, ns, "web", 1), 60, "1 pod Ready")
    weaker = {**role, "rules": [r for r in role["rules"] if "pods/eviction" not in r["resources"]]}
    api.delete(f"{path_of(drain_binding)}/chaoslab-drain-node")  # it grants pods/eviction too
    apply(api, weaker)
    try:
        target = KubeconfigTarget.load("lab-sa", kubeconfig)
        fault = build("evict-pods", {"namespaces": [ns], "selector": "app=web", "timeout": "10s"})

        def refused() -> str | None:
            try:
                fault.inject(target, fault.resolve(target, 0))  # type: ignore[call-arg]
            except InjectionError as exc:
                return str(exc)
            return None

        message = eventually(refused, 10, "the eviction refused")
        assert "403 Forbidden" in message and 'cannot create resource "pods/eviction"' in message, message
        assert "deploy/rbac" in message
    finally:
        apply(api, role)
        apply(api, drain_binding)


def test_guard_rails_refuse_on_the_real_cluster(api: KubeApi, account: tuple[Path, str], ns: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, _ = account
    deployment(api, ns, "web", 2)
    eventually(lambda: ready_pods(api, ns, "web", 2), 60, "2 pods Ready")
    path = experiment(tmp_path, kubeconfig, ns)
    runs = tmp_path / "runs"

    def run(*args: str, file: Path = path) -> tuple[int, str]:
        code = main(["run", str(file), "--runs-dir", str(runs), "--no-live", *args])
        return code, " ".join(capsys.readouterr().err.split())

    code, err = run()
    assert code == 2 and "is not the lab and is not allowed" in err and "--yes" in err, err
    # A production-looking context needs both the allow-list and --yes.
    code, err = run("--target", "kubeconfig:prod-eu", "--yes")
    assert code == 2 and "looks like production" in err and "allow: {contexts: [prod-eu]}" in err, err
    (tmp_path / "no-config.yaml").write_text("allow: {contexts: [prod-*]}\n")
    code, err = run("--target", "kubeconfig:prod-eu")
    assert code == 2 and "pass --yes" in err, err
    # Node-level faults and etcd probes through an API-only target.
    kill = experiment(tmp_path, kubeconfig, ns, faults=[{"kind": "kill-process", "component": "kube-scheduler"}],
                      probes=["control-plane"], steadyState=["apiserver-ready", "etcd-quorum"])
    code, err = run("--yes", file=kill)
    assert code == 2 and "kill-process acts on the hosts themselves" in err and "use an ssh target" in err, err
    assert "has no etcd access configured" in err, err
    # The blast radius: two pods asked for, maxPods 1.
    wide = experiment(tmp_path, kubeconfig, ns, faults=[{"kind": "evict-pods", "namespaces": [ns],
                                                         "selector": "app=web", "count": 2}])
    code, err = run("--yes", file=wide)
    assert code == 2 and "spec.blastRadius.maxPods: the faults would touch 2" in err, err
    # --dry-run prints the plan and changes nothing.
    before = api.get("/api/v1/nodes")["items"]
    code = main(["run", str(path), "--dry-run", "--runs-dir", str(runs), "--no-live"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert "dry run: nothing is changed" in out and "cordon node" in out and "evict pod@" in out
    assert [n["spec"].get("unschedulable") for n in api.get("/api/v1/nodes")["items"]] == \
           [n["spec"].get("unschedulable") for n in before]
    assert not runs.exists() or not any(runs.iterdir())


def test_the_helper_pod_spec_passes_the_apiservers_validation(api: KubeApi, account: tuple[Path, str],
                                                              lab: LabLayout) -> None:
    node = api.get("/api/v1/nodes")["items"][0]["metadata"]["name"]
    pod = pod_manifest("chaoslab-kill-process-0-0", node, kill_script("kube-controller-manager", "STOP", 30), 30)
    # Admission needs the namespace's default ServiceAccount, which its controller creates a moment after
    # the namespace (run alone, this test comes right after the account fixture made it).
    eventually(lambda: api.request("GET", "/api/v1/namespaces/chaoslab/serviceaccounts/default").status_code == 200
               or None, 30, "the default ServiceAccount of namespace chaoslab")
    resp = api.request("POST", "/api/v1/namespaces/chaoslab/pods", params={"dryRun": "All"}, body=pod)
    assert resp.status_code == 201, resp.text
    accepted = resp.json()
    assert accepted["spec"]["nodeName"] == node and accepted["spec"]["hostPID"] is True
    assert accepted["spec"]["containers"][0]["securityContext"]["privileged"] is True
    # A dry run creates nothing.
    assert api.request("GET", "/api/v1/namespaces/chaoslab/pods/chaoslab-kill-process-0-0").status_code == 404
    # The pod of a partition (one per host): the same spec around the host's iptables commands.
    rules = [Command(("iptables", "-w", "-N", "CHAOSLAB-t")), Command(("iptables", "-w", "-I", "INPUT", "-j", "CHAOSLAB-t"))]
    net = netpods.manifest({"name": "chaoslab-partition-0-0-abc123", "node": node}, rules, heal_partition("t"), 30,
                           HelperPodSettings())
    resp = api.request("POST", "/api/v1/namespaces/chaoslab/pods", params={"dryRun": "All"}, body=net)
    assert resp.status_code == 201, resp.text
    assert "iptables -w -X CHAOSLAB-t" in resp.json()["spec"]["containers"][0]["command"][2]
