"""The Kubernetes API seen through the `kube-sequence` probe on the real lab, through the CLI: isolating the
etcd leader never sends a quorum read back in resourceVersion and no watch skips an acknowledged update;
a restarted apiserver answers its watch's resume with 410 Gone and the relist is reported; and the checker
catches a gap and a regression planted in a real recording."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.lab.config import LabLayout
from chaoslab.probes.canary import LABEL, NAMESPACE

ROOT = Path(__file__).resolve().parents[2]

EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - {fault}
  duration: {duration}
  probes: [etcd, apiserver, kube-sequence]
  slo:
    resourceVersionRegressions: {{max: 0}}
    watchGaps: {{max: 0}}
"""


def run(tmp_path: Path, lab: LabLayout, name: str, fault: str, duration: str = "15s") -> tuple[int, str, Path]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(EXPERIMENT.format(name=name, lab=lab.config.name, fault=fault, duration=duration))
    proc = subprocess.run([sys.executable, "-m", "chaoslab.cli", "run", str(path), "--no-live", "--runs-dir",
                           str(tmp_path / "runs")], capture_output=True, text=True, timeout=300, check=False,
                          cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr, max((tmp_path / "runs").iterdir())


def verdict(run_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((run_dir / "verdict.json").read_text())
    return out


def values(run_dir: Path) -> dict[str, float | None]:
    out: dict[str, float | None] = verdict(run_dir)["runValues"][0]
    return out


def evidence(run_dir: Path, metric: str) -> str:
    text = (run_dir / "report.md").read_text()
    return next(line for line in text.splitlines() if line.startswith(f"| {metric} |"))


def leftovers(api: KubeApi) -> list[str]:
    items = api.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps", labelSelector=f"{LABEL}=sequence")["items"]
    return [i["metadata"]["name"] for i in items]


@pytest.fixture(scope="module")
def leader_isolation(lab: LabLayout, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    return run(tmp_path_factory.mktemp("kube-consistency"), lab, "isolate-leader-api",
               "{kind: partition, shape: isolate, select: leader, traffic: peer}")


@pytest.mark.slow
def test_leader_isolation_keeps_quorum_reads_monotonic_and_watches_gapless(
        leader_isolation: tuple[int, str, Path], api: KubeApi) -> None:
    code, out, run_dir = leader_isolation
    assert code == 0, out
    got = values(run_dir)
    assert got["resourceVersionRegressions"] == 0 and got["watchGaps"] == 0
    # The probe really measured: many reads across all endpoints, and the fault showed in the error rates
    # (the cut-off host's apiserver cannot serve quorum reads while its etcd member has no leader).
    reads = evidence(run_dir, "resourceVersionRegressions")
    assert int(reads.split(" of ")[1].split()[0]) > 50, reads
    assert got["apiReadErrorRate"] is not None and got["apiWriteErrorRate"] is not None
    assert got["apiReadErrorRate"] > 0, evidence(run_dir, "apiReadErrorRate")
    assert got["watchRelists"] is not None
    assert not leftovers(api)


@pytest.mark.slow
def test_a_restarted_apiserver_expires_its_watch_and_the_relist_is_reported(lab: LabLayout, api: KubeApi,
                                                                           tmp_path: Path) -> None:
    # The new apiserver's watch cache starts from a fresh list, so resuming the watch from the last
    # resourceVersion it delivered is "too old": 410 Gone, then a relist that covers the missed updates.
    code, out, run_dir = run(tmp_path, lab, "kill-apiserver-api",
                             "{kind: kill-process, component: kube-apiserver, select: 'host:cp2', signal: KILL}",
                             duration="20s")
    assert code == 0, out
    got = values(run_dir)
    assert got["watchGaps"] == 0 and got["resourceVersionRegressions"] == 0
    relists = evidence(run_dir, "watchRelists")
    assert got["watchRelists"] and got["watchRelists"] >= 1, relists
    assert "too old resource version" in relists and "cp2" in relists
    assert not leftovers(api)


@pytest.mark.slow
def test_the_checker_catches_a_gap_and_a_regression_planted_in_a_real_recording(
        leader_isolation: tuple[int, str, Path], tmp_path: Path) -> None:
    _, _, recorded = leader_isolation
    run_dir = tmp_path / recorded.name
    shutil.copytree(recorded, run_dir)
    timeline = run_dir / "runs" / "1" / "timeline.jsonl"
    records = [json.loads(line) for line in timeline.read_text().splitlines()]
    acked = [r["values"]["rv"] for r in records if r.get("subject") == "update" and r["values"]["ok"]]
    skipped = acked[len(acked) // 2]
    # Drop the lb watch's event for one acknowledged update, and send one quorum read back below its floor.
    kept = [r for r in records if not (r.get("subject") == "watch-lb" and r["values"].get("what") == "event"
                                       and r["values"]["rv"] == skipped)]
    assert len(kept) == len(records) - 1
    read = next(r for r in kept if r.get("subject") == "read-cp3" and r["values"]["ok"]
                and r["values"]["floor"] > 1)
    read["values"]["rv"] = read["values"]["floor"] - 1
    timeline.write_text("".join(json.dumps(r) + "\n" for r in kept))
    proc = subprocess.run([sys.executable, "-m", "chaoslab.cli", "report", str(run_dir)], capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = values(run_dir)
    assert got["watchGaps"] == 1 and got["resourceVersionRegressions"] == 1
    assert f"first: rv {skipped}" in evidence(run_dir, "watchGaps")
    assert f"cp3 returned {read['values']['rv']}" in evidence(run_dir, "resourceVersionRegressions")
    assert not verdict(run_dir)["passed"]
