"""webhook-outage on the real lab: the apiserver really calls chaoslab's webhook (its request log says so)
and a matched write is refused or delayed as the mode says, while an unmatched one is not; after the undo
no configuration, server, switch, namespace label or file is left, also after SIGKILL of a run (the
dead-man's switch heals at its deadline; `chaoslab recover` heals at once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runs import chaoslab, recover
from fakes import FakeTarget
from waiting import eventually

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError
from chaoslab.faults import build
from chaoslab.faults.base import Injection, apply_undo
from chaoslab.faults.webhook_outage import LABEL, TEST_NAMESPACE, WebhookOutage, configuration_path
from chaoslab.lab.config import LabLayout
from chaoslab.plan.guard import radius_problems
from chaoslab.spec.model import BlastRadius, Experiment, FaultSpec
from chaoslab.targets.lab import LabTarget

CM = "chaoslab-webhook-itest"
ROOT_CA = "kube-root-ca.crt"


def configurations(api: KubeApi) -> list[str]:
    """Every webhook configuration chaoslab made (its label), validating and mutating."""
    return [c["metadata"]["name"] for kind in ("validating", "mutating")
            for c in api.get(configuration_path(kind), labelSelector=LABEL)["items"]]


def processes(marker: str) -> list[str]:
    """The webhook server and the dead-man's switch of one injection, if running."""
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def assert_undone(api: KubeApi, injection: Injection) -> None:
    p = injection.undo[0].params
    assert p["name"] not in configurations(api)
    assert not processes(p["marker"]), processes(p["marker"])
    for ns in p["namespaces"]:
        assert LABEL not in (api.get(f"/api/v1/namespaces/{ns}")["metadata"].get("labels") or {})
    assert not Path(p["dir"]).exists()


def update(api: KubeApi, ns: str, seq: int) -> tuple[int, float, str]:
    """Update (or create) the test ConfigMap in `ns`: (status, seconds, body)."""
    t0 = time.monotonic()
    resp = api.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/{CM}", body={"data": {"seq": str(seq)}},
                       content_type="application/merge-patch+json", timeout=70)
    return resp.status_code, time.monotonic() - t0, resp.text


def webhook_calls(injection: Injection) -> list[dict[str, Any]]:
    """The calls the webhook server logged, less the fault's own dry-run probes (`await_in_force`)."""
    log = Path(injection.undo[0].params["dir"]) / "requests.jsonl"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [c for c in calls if not str(c.get("name") or "").startswith("chaoslab-in-force-")]


@pytest.fixture
def configmaps(api: KubeApi) -> Iterator[None]:
    for ns in (TEST_NAMESPACE, "default"):
        if api.request("GET", f"/api/v1/namespaces/{ns}").status_code == 404:
            api.create("/api/v1/namespaces", {"metadata": {"name": ns}})
        if api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/{CM}").status_code == 404:
            api.create(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": CM}, "data": {"seq": "0"}})
        # kube-controller-manager publishes its CA bundle into every new namespace (a ConfigMap CREATE): let it
        # land first, so the only writes the webhook sees while a test holds it are the test's own.
        eventually(lambda ns=ns: api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/{ROOT_CA}").status_code == 200,
                   60, f"kube-controller-manager's {ROOT_CA} in {ns}")
    yield
    for name in configurations(api):  # whatever a failed test left
        for kind in ("validating", "mutating"):
            api.delete(configuration_path(kind, name))


def injected(target: LabTarget, params: dict[str, Any]) -> tuple[WebhookOutage, Injection]:
    fault = build("webhook-outage", params, duration=60)
    assert isinstance(fault, WebhookOutage)
    injection = fault.resolve(target, 0)
    fault.inject(target, injection)
    return fault, injection


@pytest.mark.parametrize(("params", "status", "says"), [
    ({"mode": "deny"}, 403, "denied the request: chaoslab webhook-outage"),
    ({"mode": "error500"}, 500, "failed calling webhook"),
    ({"mode": "bad-cert", "badCert": "expired"}, 500, "x509: certificate has expired"),
    ({"mode": "bad-cert", "badCert": "wrong-ca"}, 500, "x509: certificate signed by unknown authority"),
    ({"mode": "unreachable"}, 500, "connection refused"),
    ({"mode": "hang", "timeoutSeconds": 2}, 500, "context deadline exceeded"),
    ({"mode": "hang", "timeoutSeconds": 2, "type": "mutating"}, 500, "context deadline exceeded"),
])
def test_each_mode_blocks_matched_writes_only_and_is_undone(api: KubeApi, target: LabTarget, configmaps: None,
                                                            params: dict[str, Any], status: int, says: str) -> None:
    _, injection = injected(target, params)
    try:
        assert injection.undo[0].params["name"] in configurations(api)
        got, seconds, body = update(api, TEST_NAMESPACE, 1)
        assert got == status and says in body, body
        if params["mode"] == "hang":
            # An update waits for two calls: the apiserver retries a failed update with a fresh read from etcd.
            assert 2 * params["timeoutSeconds"] <= seconds < 2 * params["timeoutSeconds"] + 3, seconds
        if params["mode"] in ("deny", "error500", "hang"):
            calls = webhook_calls(injection)
            assert calls and {(c["namespace"], c["resource"], c["operation"]) for c in calls} == {
                (TEST_NAMESPACE, "configmaps", "UPDATE")}, calls
        got, seconds, body = update(api, "default", 1)
        assert got == 200 and seconds < 1.0, body
    finally:
        apply_undo(target, injection.undo[0])
    assert_undone(api, injection)
    got, _, body = update(api, TEST_NAMESPACE, 2)
    assert got == 200, body


def test_failure_policy_ignore_lets_writes_through_after_the_timeout(api: KubeApi, target: LabTarget,
                                                                    configmaps: None) -> None:
    _, injection = injected(target, {"mode": "hang", "timeoutSeconds": 2, "failurePolicy": "Ignore"})
    try:
        got, seconds, body = update(api, TEST_NAMESPACE, 3)
        assert got == 200, body
        assert 2.0 <= seconds < 7.0, seconds  # waited for the webhook, then went ahead without it
        assert webhook_calls(injection)
    finally:
        apply_undo(target, injection.undo[0])
    assert_undone(api, injection)


def test_control_plane_matches_need_consent(target: LabTarget) -> None:
    fault = build("webhook-outage", {"resources": ["leases.coordination.k8s.io"], "namespaces": ["kube-system"]})
    injection = fault.resolve(target, 0)  # read-only: nothing is created by resolve
    exp = Experiment("w", (FaultSpec("webhook-outage"),), 10.0)
    [problem] = radius_problems(exp, [injection], 0, FakeTarget())
    assert "allowControlPlaneWebhooks" in problem and "kube-system/leases.coordination.k8s.io" in problem
    consent = Experiment("w", (FaultSpec("webhook-outage"),), 10.0,
                         blast_radius=BlastRadius(allowControlPlaneWebhooks=True))
    assert radius_problems(consent, [injection], 0, FakeTarget()) == []


def test_a_namespace_that_does_not_exist_is_refused_before_anything_is_made(api: KubeApi,
                                                                            target: LabTarget) -> None:
    fault = build("webhook-outage", {"namespaces": ["no-such-namespace"]})
    with pytest.raises(InjectionError, match="no-such-namespace do not exist"):
        fault.resolve(target, 0)
    assert configurations(api) == []


EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: webhook-killed}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready]
  faults:
    - {{kind: webhook-outage, mode: deny, deadman: {deadman}}}
  duration: {duration}s
  probes: [apiserver, admission]
"""


def killed_run(lab: LabLayout, api: KubeApi, tmp_path: Path, duration: int, deadman: int) -> tuple[Path, dict[str, Any]]:
    """Start a run, SIGKILL it once its webhook exists; (run directory, the pending undo's params)."""
    exp = tmp_path / "webhook.yaml"
    exp.write_text(EXPERIMENT.format(lab=lab.config.name, duration=duration, deadman=deadman))
    proc = subprocess.Popen(chaoslab("run", str(exp), "--no-live",
                             "--runs-dir", str(tmp_path / "runs")), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: configurations(api) or proc.poll() is not None, 90, "the webhook configuration created")
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    run_dir = next((tmp_path / "runs").iterdir())
    [pending] = json.loads((run_dir / "undo.json").read_text())
    [undo] = pending["undo"]
    assert undo["action"] == "delete-webhook"
    assert undo["params"]["name"] in configurations(api)
    assert len(processes(undo["params"]["marker"])) == 2  # the server and the switch outlive chaoslab
    got, _, body = update(api, TEST_NAMESPACE, 4)
    assert got == 403, body
    return run_dir, undo["params"]


@pytest.mark.slow
def test_the_dead_mans_switch_deletes_the_webhook_after_chaoslab_is_sigkilled(
        lab: LabLayout, api: KubeApi, tmp_path: Path, configmaps: None) -> None:
    started = time.monotonic()
    _, params = killed_run(lab, api, tmp_path, duration=5, deadman=5)
    eventually(lambda: params["name"] not in configurations(api), 40, "the switch deleted the configuration")
    healed = time.monotonic() - started
    eventually(lambda: not processes(params["marker"]), 15, "server and switch gone")
    assert LABEL not in (api.get(f"/api/v1/namespaces/{TEST_NAMESPACE}")["metadata"].get("labels") or {})
    assert not Path(params["dir"]).exists()
    got, _, body = update(api, TEST_NAMESPACE, 5)
    assert got == 200, body
    print(f"dead-man's switch healed {healed:.1f} s after the run started (deadline: 5 s + 5 s after injection)")


@pytest.mark.slow
def test_chaoslab_recover_deletes_the_webhook_of_a_sigkilled_run(lab: LabLayout, api: KubeApi, tmp_path: Path,
                                                                 configmaps: None) -> None:
    run_dir, params = killed_run(lab, api, tmp_path, duration=300, deadman=60)
    result = recover(run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert params["name"] not in configurations(api)
    assert not processes(params["marker"]), "recover left the server or the switch running"
    assert not (run_dir / "undo.json").exists()
    got, _, body = update(api, TEST_NAMESPACE, 6)
    assert got == 200, body


@pytest.mark.slow
def test_a_run_measures_matched_and_unmatched_writes(lab: LabLayout, tmp_path: Path) -> None:
    exp = tmp_path / "deny.yaml"
    exp.write_text(EXPERIMENT.format(lab=lab.config.name, duration=8, deadman=60).replace(
        "probes: [apiserver, admission]", "probes: [apiserver, admission]\n  slo:\n"
        "    matchedWriteErrorRate: {min: 0.75}\n    unmatchedWriteErrorRate: {max: 0}\n"
        "    unmatchedWriteLatency: {max: 5s}"))
    result = subprocess.run(chaoslab("run", str(exp), "--no-live", "--runs-dir",
                             str(tmp_path / "runs")), capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Not 1: the apiserver calls a new webhook once its informer has the configuration, which can take a
    # write or two after the `webhook` event on a busy machine.
    verdict = json.loads(next((tmp_path / "runs").iterdir()).joinpath("verdict.json").read_text())
    text = json.dumps(verdict)
    assert "matchedWriteErrorRate" in text and "unmatchedWriteLatency" in text
