"""cert-expiry on the real lab: the schedulers run with a reissued client certificate, keep their Lease
while it is valid, and once it has expired the apiserver refuses them (401, in their logs) and the Lease
is no longer renewed by anyone; the undo puts the original back and a scheduler leads again. No
short-lived certificate, backup or switch is left, also after SIGKILL of a run (the dead-man's switch at
its deadline, or `chaoslab recover` at once)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cli_runs import only_run, recover, sigkill_when, start_run
from waiting import eventually, renewing_holder

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.faults import build
from chaoslab.faults.base import Injection, apply_undo
from chaoslab.faults.cert_expiry import CertExpiry, not_after
from chaoslab.lab.config import LabLayout
from chaoslab.targets.lab import LabTarget

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler"


def renew_time(api: KubeApi) -> str:
    return str(api.get(LEASE)["spec"].get("renewTime"))


def switches(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def assert_restored(params: dict[str, Any], original: bytes) -> None:
    assert Path(params["cert"]).read_bytes() == original
    assert not Path(params["backup"]).exists()
    assert not Path(params["switch"]).exists()
    assert not switches(params["marker"])
    assert not_after(Path(params["cert"])) - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)


def log_lines(lab: LabLayout, word: str) -> int:
    return sum(p.read_text(errors="replace").count(word) for p in lab.log_dir.glob("kube-scheduler@*.log"))


@pytest.mark.slow
def test_the_expired_certificate_cuts_the_scheduler_off_until_the_original_is_back(
        lab: LabLayout, api: KubeApi, target: LabTarget) -> None:
    renewing_holder(api, "kube-scheduler")
    original = target.certificate("scheduler-client").cert.read_bytes()
    fault = build("cert-expiry", {"lifetime": "30s"}, duration=60)
    assert isinstance(fault, CertExpiry)
    injection: Injection = fault.resolve(target, 0)
    params = dict(injection.undo[0].params)
    events: list[tuple[str, dict[str, Any]]] = []
    refused_before = log_lines(lab, "Unauthorized")
    try:
        fault.inject(target, injection, record=lambda kind, **d: events.append((kind, d)))
        [(kind, detail)] = events
        assert kind == "certificate" and 10 < detail["expiresIn"] <= 30
        expires = time.monotonic() + detail["expiresIn"]
        assert Path(params["backup"]).read_bytes() == original and len(switches(params["marker"])) == 1
        assert not_after(Path(params["cert"])) - dt.datetime.now(dt.UTC) < dt.timedelta(seconds=31)
        # While the certificate is valid the restarted schedulers work: one of them renews the Lease.
        renewing_holder(api, "kube-scheduler", timeout=max(1.0, expires - time.monotonic()))
        time.sleep(max(0.0, expires - time.monotonic()))
        # Once it has expired: refused by the apiserver, and nobody renews within the lease duration.
        eventually(lambda: log_lines(lab, "Unauthorized") > refused_before, 30, "a scheduler logs 401 Unauthorized")
        stale = renew_time(api)
        time.sleep(16)  # longer than the lease duration, 15 s
        assert renew_time(api) == stale, "the Lease was renewed with an expired certificate"
    finally:
        apply_undo(target, injection.undo[0])
    assert_restored(params, original)
    holder = renewing_holder(api, "kube-scheduler", timeout=60)
    print(f"after the restore, {holder} leads again")


EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: cert-killed}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready]
  faults:
    - {{kind: cert-expiry, lifetime: 120s, deadman: {deadman}}}
  duration: {duration}s
  probes: [apiserver]
"""


def killed_run(lab: LabLayout, target: LabTarget, tmp_path: Path, duration: int,
               deadman: int) -> tuple[Path, dict[str, Any], bytes]:
    cert = target.certificate("scheduler-client").cert
    original = cert.read_bytes()
    exp = tmp_path / "cert.yaml"
    exp.write_text(EXPERIMENT.format(lab=lab.config.name, duration=duration, deadman=deadman))
    proc = start_run(exp, tmp_path / "runs")
    sigkill_when(proc, lambda: cert.read_bytes() != original, 90, "the certificate reissued")
    run_dir = only_run(tmp_path / "runs")
    [pending] = json.loads((run_dir / "undo.json").read_text())
    [undo] = pending["undo"]
    assert undo["action"] == "restore-certificate"
    assert len(switches(undo["params"]["marker"])) == 1
    return run_dir, undo["params"], original


@pytest.mark.slow
def test_the_dead_mans_switch_restores_the_certificate_after_chaoslab_is_sigkilled(
        lab: LabLayout, api: KubeApi, target: LabTarget, tmp_path: Path) -> None:
    run_dir, params, original = killed_run(lab, target, tmp_path, duration=5, deadman=5)
    eventually(lambda: Path(params["cert"]).read_bytes() == original, 60, "the switch restored the original")
    eventually(lambda: not switches(params["marker"]), 30, "the switch finished")
    assert_restored(params, original)
    renewing_holder(api, "kube-scheduler", timeout=60)
    result = recover(run_dir, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr  # replaying after the switch is harmless


@pytest.mark.slow
def test_chaoslab_recover_restores_the_certificate_of_a_sigkilled_run(lab: LabLayout, api: KubeApi,
                                                                      target: LabTarget, tmp_path: Path) -> None:
    run_dir, params, original = killed_run(lab, target, tmp_path, duration=300, deadman=60)
    result = recover(run_dir, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_restored(params, original)
    assert not (run_dir / "undo.json").exists()
    renewing_holder(api, "kube-scheduler", timeout=60)
