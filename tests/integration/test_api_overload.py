"""api-overload on the real lab: the load really reaches the apiserver as the distinct users it names and
goes through API Priority and Fairness (the apiserver's own metrics count it in the global-default
priority level), it stays within its request budget, and after the undo — also after SIGKILL of a run,
by the dead-man's switch or `chaoslab recover` — no generator, binding or namespace of it is left."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cli_runs import only_run, recover, sigkill_when, start_run
from waiting import eventually

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.faults import build
from chaoslab.faults.api_overload import ApiOverload
from chaoslab.faults.base import Injection, apply_undo
from chaoslab.faults.overload import process_pattern
from chaoslab.lab.config import LabLayout
from chaoslab.probes.apiserver_metrics import parse
from chaoslab.targets.lab import LabTarget

CRB = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"


def generators(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", process_pattern(marker)], capture_output=True, text=True, check=False)
    return out.stdout.split()


def dispatched(target: LabTarget, priority_level: str) -> float:
    """apiserver_flowcontrol_dispatched_requests_total of one priority level, summed over every apiserver
    of the lab (the load balancer spreads the load over all of them in the HA profile)."""
    session = target.api().session
    total = 0.0
    for host, url in target.apiserver_endpoints().items():
        if host == "lb":
            continue
        text = session.get(f"{url}/metrics", timeout=20).text
        total += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("apiserver_flowcontrol_dispatched_requests_total{")
                     and f'priority_level="{priority_level}"' in line)
    return total


def stats(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(params["dir"], "stats.jsonl").read_text().splitlines()]


def assert_cleaned_up(api: KubeApi, params: dict[str, Any]) -> None:
    assert not generators(params["marker"])
    assert api.request("GET", f"{CRB}/{params['binding']}").status_code == 404
    ns = api.request("GET", f"/api/v1/namespaces/{params['namespace']}")
    assert ns.status_code == 404 or ns.json()["metadata"].get("deletionTimestamp")
    assert not Path(params["switch"]).exists()
    switch = subprocess.run(["pgrep", "-f", f"^sh -c .* {params['marker']}$"], capture_output=True, text=True,
                            check=False).stdout
    assert not switch.split(), "the dead-man's switch is still armed"


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["list", "relist", "writes"])
def test_the_load_goes_through_apf_as_distinct_users_within_its_budget_and_is_undone(
        api: KubeApi, target: LabTarget, pattern: str) -> None:
    before = dispatched(target, "global-default")
    fault = build("api-overload", {"pattern": pattern, "concurrency": 6, "users": 3, "requests": 300,
                                   "seedObjects": 50, "seedBytes": 2048, "period": "1s"}, duration=60)
    assert isinstance(fault, ApiOverload)
    injection: Injection = fault.resolve(target, 0)
    params = dict(injection.undo[0].params)
    events: list[tuple[str, dict[str, Any]]] = []
    try:
        fault.inject(target, injection, record=lambda kind, **d: events.append((kind, d)))
        assert events[0][0] == "overload" and events[0][1]["bounds"]["concurrency"] == 64
        # One generator (it may already have spent its budget: 300 writes take a second on the HA lab).
        assert len(generators(params["marker"])) <= 1
        # The budget ends the load before the duration does.
        eventually(lambda: not generators(params["marker"]), 55, "the load stopped at its budget of 300 requests")
        record = stats(params)
        end = record[-1]
        assert end["event"] == "end" and end["sent"] == 300, end
        ok = sum(n for status, n in end["answered"].items() if status in ("200", "201"))
        assert ok >= 0.9 * sum(end["answered"].values()), end
        if pattern != "writes":
            listed = api.get(f"/api/v1/namespaces/{params['namespace']}/configmaps")["items"]
            assert sum(c["metadata"]["name"].startswith("seed-") for c in listed) == 50
        # APF saw the requests as its global-default priority level's (not exempt, as chaoslab's admin is).
        assert dispatched(target, "global-default") - before >= 0.5 * ok
        binding = api.get(f"{CRB}/{params['binding']}")
        assert binding["subjects"][0]["name"] == "chaoslab:overload"
    finally:
        apply_undo(target, injection.undo[0])
    assert_cleaned_up(api, params)
    print(f"{pattern}: {end['sent']} requests answered {end['answered']} in {end['t']:.1f} s")


def test_the_apiserver_metrics_parse_on_the_real_apiserver(api: KubeApi) -> None:
    got = parse(api.request("GET", "/metrics", timeout=20).text)
    assert got["rss"] and got["rss"] > 50e6
    assert "global-default" in got["inqueue"] or "global-default" in got["executing"]
    assert got["latency"].get("mutating") and got["latency"]["mutating"]["+Inf"] > 0


EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: overload-killed}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready]
  faults:
    - {{kind: api-overload, pattern: writes, concurrency: 2, users: 2, rate: 5, requests: 5000, deadman: {deadman}}}
  duration: {duration}s
  probes: [apiserver]
"""


def killed_run(lab: LabLayout, api: KubeApi, tmp_path: Path, duration: int,
               deadman: int) -> tuple[Path, dict[str, Any]]:
    exp = tmp_path / "overload.yaml"
    exp.write_text(EXPERIMENT.format(lab=lab.config.name, duration=duration, deadman=deadman))
    proc = start_run(exp, tmp_path / "runs")

    def started() -> bool:
        undo = next((tmp_path / "runs").glob("*/undo.json"), None)
        return bool(undo and generators(json.loads(undo.read_text())[0]["undo"][0]["params"]["marker"]))

    sigkill_when(proc, started, 90, "the load generator started")
    run_dir = only_run(tmp_path / "runs")
    [pending] = json.loads((run_dir / "undo.json").read_text())
    [undo] = pending["undo"]
    assert undo["action"] == "stop-overload"
    assert generators(undo["params"]["marker"]), "the load stopped with chaoslab; the switch test needs it running"
    return run_dir, undo["params"]


@pytest.mark.slow
def test_after_sigkill_the_load_stops_at_its_deadline_and_the_switch_cleans_up(
        lab: LabLayout, api: KubeApi, tmp_path: Path) -> None:
    started = time.monotonic()
    _, params = killed_run(lab, api, tmp_path, duration=8, deadman=5)
    eventually(lambda: not generators(params["marker"]), 30, "the generator stopped at the end of the duration")
    eventually(lambda: api.request("GET", f"{CRB}/{params['binding']}").status_code == 404, 60,
               "the switch deleted the ClusterRoleBinding")
    eventually(lambda: not subprocess.run(["pgrep", "-f", f"^sh -c .* {params['marker']}$"], capture_output=True,
                                          check=False).stdout, 60, "the switch finished")
    assert_cleaned_up(api, params)
    print(f"cleaned up {time.monotonic() - started:.1f} s after the run started (duration 8 s, deadman 5 s)")


@pytest.mark.slow
def test_chaoslab_recover_stops_the_load_of_a_sigkilled_run(lab: LabLayout, api: KubeApi, tmp_path: Path) -> None:
    run_dir, params = killed_run(lab, api, tmp_path, duration=300, deadman=60)
    result = recover(run_dir, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_cleaned_up(api, params)
    assert not (run_dir / "undo.json").exists()


def test_the_node_lease_probe_sees_every_simulated_kubelets_heartbeat(target: LabTarget) -> None:
    from chaoslab.probes.node_lease import NodeLeaseProbe
    from chaoslab.timeline import Timeline

    timeline = Timeline.start()
    probe = NodeLeaseProbe(target, timeline)
    probe.start()

    def renewed_twice() -> bool:
        renewals = {n: {s.values["renew"] for s in timeline.samples_of("node-lease", n)}
                    for n in target.simulated_nodes()}
        return all(len(r) >= 2 for r in renewals.values())

    try:
        # The test lab's nodes hold 20 s Leases and renew every 5 s.
        eventually(renewed_twice, 30, "two renewals of every simulated node's Lease seen")
    finally:
        probe.stop()


RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac"


@pytest.mark.slow
def test_the_opt_in_role_is_all_a_service_account_needs_to_run_the_load(lab: LabLayout, api: KubeApi,
                                                                         tmp_path: Path) -> None:
    """deploy/rbac/00-account.yaml + opt-in/api-overload.yaml, bound to a ServiceAccount whose token is the
    only credential: the fault runs through a kubeconfig target, the load is answered, the undo cleans up."""
    import base64

    import yaml

    from chaoslab.clients.kubeapi import ApiError
    from chaoslab.targets.kubeconfig import KubeconfigTarget

    rbac = "/apis/rbac.authorization.k8s.io/v1"
    paths = {"Namespace": lambda d: "/api/v1/namespaces",
             "ServiceAccount": lambda d: f"/api/v1/namespaces/{d['metadata']['namespace']}/serviceaccounts",
             "ClusterRole": lambda d: f"{rbac}/clusterroles", "ClusterRoleBinding": lambda d: f"{rbac}/clusterrolebindings"}
    docs = [d for f in (RBAC / "00-account.yaml", RBAC / "opt-in" / "api-overload.yaml")
            for d in yaml.safe_load_all(f.read_text()) if d and d["kind"] in paths]
    for doc in docs:
        try:
            api.create(paths[doc["kind"]](doc), doc)
        except ApiError as exc:
            if exc.status != 409:
                raise

    def token() -> str | None:
        sa = api.get("/api/v1/namespaces/chaoslab/serviceaccounts/chaoslab")
        for ref in sa.get("secrets") or []:
            data = api.get(f"/api/v1/namespaces/chaoslab/secrets/{ref['name']}").get("data", {})
            if data.get("token"):
                return base64.b64decode(data["token"]).decode()
        return None

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab-sa",
        "clusters": [{"name": "lab", "cluster": {"server": lab.apiserver_url,
                                                 "certificate-authority": str(lab.pki_dir / "ca.crt")}}],
        "users": [{"name": "chaoslab", "user": {"token": eventually(token, 30, "the ServiceAccount's token")}}],
        "contexts": [{"name": "lab-sa", "context": {"cluster": "lab", "user": "chaoslab"}}]}))
    target = KubeconfigTarget.load("lab-sa", kubeconfig)
    fault = build("api-overload", {"pattern": "writes", "concurrency": 2, "users": 2, "requests": 40}, duration=60)
    injection = fault.resolve(target, 0)
    params = dict(injection.undo[0].params)
    try:
        fault.inject(target, injection)
        eventually(lambda: not generators(params["marker"]), 55, "the load stopped at its budget")
        end = stats(params)[-1]
        assert end["event"] == "end" and end["answered"] == {"200": 40}, end
    finally:
        apply_undo(target, injection.undo[0])
        for doc in reversed(docs):
            if doc["kind"] != "Namespace":
                api.delete(f"{paths[doc['kind']](doc)}/{doc['metadata']['name']}")
    assert_cleaned_up(api, params)
