"""`spec.workload` on the real lab: a run creates the workload it needs, binds the fault that acts on it
once it is ready (the eviction picks one of its pods), and deletes it at the end; after chaoslab is
SIGKILLed, `chaoslab recover` deletes it."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from cli_runs import chaoslab, only_run, recover, sigkill_when, start_run

from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.lab.config import LabLayout

EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: evict-with-workload}}
spec:
  target: {{kind: lab, name: {lab}}}
  workload:
    manifests: [web.yaml]
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - {{kind: evict-pods, namespaces: [{ns}], selector: app=web, count: 1, maxPods: 1, timeout: 1m}}
  duration: {duration}
  probes: [apiserver, etcd, {{kind: workloads, namespaces: [{ns}], selector: app=web}}]
  slo:
    reschedulingTime: {{max: 60s}}
    pdbViolations: {{max: 0}}
"""

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}, labels: {{app: web}}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: nginx:1.25}}]}}
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {ns}}}
spec:
  minAvailable: 2
  selector: {{matchLabels: {{app: web}}}}
"""


def experiment(lab: LabLayout, tmp_path: Path, duration: str) -> tuple[Path, str]:
    ns = f"wl-{uuid.uuid4().hex[:6]}"
    (tmp_path / "web.yaml").write_text(MANIFEST.format(ns=ns))
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT.format(lab=lab.config.name, ns=ns, duration=duration))
    return path, ns


def exists(api: KubeApi, ns: str) -> bool:
    try:
        api.get(f"/api/v1/namespaces/{ns}")
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def undo_entries(tmp_path: Path) -> list[dict[str, object]]:
    for f in (tmp_path / "runs").glob("*/undo.json"):
        try:
            return list(json.loads(f.read_text()))
        except ValueError:  # being written
            return []
    return []


@pytest.mark.slow
def test_a_run_creates_its_workload_binds_the_fault_on_it_and_deletes_it(
        lab: LabLayout, api: KubeApi, tmp_path: Path) -> None:
    path, ns = experiment(lab, tmp_path, "5s")
    assert not exists(api, ns)
    dry = subprocess.run(chaoslab("run", str(path), "--dry-run"), capture_output=True, text=True, timeout=60, check=False)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"create unless there:\n  - Namespace {ns}\n  - Deployment {ns}/web" in dry.stdout, dry.stdout
    assert "deferred: 'bound when the run starts, once spec.workload has created" in dry.stdout, dry.stdout
    result = subprocess.run(chaoslab("run", str(path), "--no-live", "--runs-dir", str(tmp_path / "runs")),
                            capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not exists(api, ns)  # deleted and waited for
    run_dir = next((tmp_path / "runs").iterdir())
    assert not (run_dir / "undo.json").exists()
    events = [json.loads(line) for line in (run_dir / "runs" / "1" / "timeline.jsonl").read_text().splitlines()]
    done = [e["detail"].get("action") for e in events if e.get("event") == "workload"]
    assert done == ["created", "created", "created", "ready"], done
    verdict = json.loads((run_dir / "verdict.json").read_text())
    slos = {s["metric"]: s for s in verdict["slos"]}
    assert slos["reschedulingTime"]["measured"] is not None and slos["reschedulingTime"]["low"] is not None


@pytest.mark.slow
def test_after_a_sigkill_recover_deletes_the_workload(lab: LabLayout, api: KubeApi, tmp_path: Path) -> None:
    path, ns = experiment(lab, tmp_path, "5m")
    proc = start_run(path, tmp_path / "runs")
    # Killed while the fault holds: the fault's entry is written after the workload's.
    sigkill_when(proc, lambda: len(undo_entries(tmp_path)) >= 2, 180, "the workload ready and the fault injected")
    run_dir = only_run(tmp_path / "runs")
    undo = json.loads((run_dir / "undo.json").read_text())
    assert undo[0]["fault"] == "workload" and undo[0]["standing"]
    result = recover(run_dir, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not exists(api, ns)
    assert not (run_dir / "undo.json").exists()
