"""Rescheduling measured on the real lab: a drain-node experiment run through the CLI with the workloads
probe, a Deployment of 6 replicas behind a PodDisruptionBudget of minAvailable 5. The budget must hold
(pdbViolations 0), the evicted pods must come back Ready elsewhere (reschedulingTime measured), and the
report must carry the drain summary."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import eventually
from workloads import busiest_node, deployment, namespace, pdb, per_node, ready_pods

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.lab.config import LabLayout

ROOT = Path(__file__).resolve().parents[2]




@pytest.fixture
def ns(api: KubeApi) -> Iterator[str]:
    with namespace(api, "resched") as name:
        yield name


EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata:
  name: drain-rescheduling
spec:
  target: {{kind: lab}}
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - kind: drain-node
      nodes: [{node}]
      namespaces: [{ns}]
      retryInterval: 1s
      timeout: 90s
  duration: 10s
  probes: [control-plane, disruption]
  slo:
    pdbViolations: {{max: 0}}
    reschedulingTime: {{max: 60s}}
    workloadUnavailable: {{max: 60s}}
    drainDuration: {{max: 90s}}
"""


def test_a_drain_under_a_pdb_is_measured_rescheduled_without_breaching_the_budget(
        lab: LabLayout, api: KubeApi, ns: str, tmp_path: Path) -> None:
    deployment(api, ns, "web", 6)
    placed = eventually(lambda: ready_pods(api, ns, "web", 6), 90, "6 web pods Ready")
    pdb(api, ns, "web", 5, 1)
    by_node = per_node(placed)
    node = busiest_node(placed)

    experiment = tmp_path / "drain.yaml"
    experiment.write_text(EXPERIMENT.format(node=node, ns=ns))
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "chaoslab.cli", "run", str(experiment), "--no-live",
                           "--target", f"lab:{lab.config.name}", "--runs-dir", str(runs)],
                          capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    [run_dir] = sorted(runs.iterdir())
    out = proc.stdout + proc.stderr
    verdict = json.loads((run_dir / "verdict.json").read_text())
    measured = {s["metric"]: s for s in verdict["slos"]}
    print(json.dumps({m: (s["measured"], s["evidence"]) for m, s in measured.items()}, indent=1))
    assert proc.returncode == 0, out
    assert measured["pdbViolations"]["measured"] == 0
    assert 0 < measured["reschedulingTime"]["measured"] < 60
    assert f"Deployment/{ns}/web: {by_node[node]} pods" in measured["reschedulingTime"]["evidence"]
    # One pod short at a time (the budget allows one disruption) while each replacement starts: on simulated
    # nodes that is under a second, which a 500 ms probe may or may not catch.
    assert 0 <= measured["workloadUnavailable"]["measured"] < 30
    assert 0 < measured["drainDuration"]["measured"] < 90
    report = (run_dir / "report.md").read_text()
    assert "Drain:" in report and f"| {node} |" in report and f"{by_node[node]} evicted" in report
    assert "<h3>Drain</h3>" in (run_dir / "report.html").read_text()
    assert not api.get(f"/api/v1/nodes/{node}")["spec"].get("unschedulable")
