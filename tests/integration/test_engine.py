"""Experiments end to end on the real lab, through the CLI as a user runs them: the verdict, the exit
code and the run directory's files."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaoslab.lab.config import LabLayout

ROOT = Path(__file__).resolve().parents[2]


def run(lab: LabLayout, experiment: str, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    proc = subprocess.run(
        [sys.executable, "-m", "chaoslab.cli", "run", str(ROOT / experiment), "--no-live",
         "--target", f"lab:{lab.config.name}", "--runs-dir", str(tmp_path), *extra],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    run_dirs = sorted(tmp_path.iterdir())
    return proc.returncode, proc.stdout + proc.stderr, run_dirs[-1]


def slo(verdict: dict, metric: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in verdict["slos"] if s["metric"] == metric)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_scheduler_leader_kill_meets_its_slos_and_writes_every_report(lab: LabLayout, tmp_path: Path) -> None:
    code, out, run_dir = run(lab, "experiments/scheduler-leader-kill.yaml", tmp_path)
    assert code == 0, out
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["passed"] is True
    takeover = slo(verdict, "schedulerTimeToNewLeader")["measured"]
    assert 5 < takeover < 30  # a hard kill: the standby waits for the lease to expire
    assert slo(verdict, "schedulerLeaderElections")["measured"] == 1
    suite = ET.parse(run_dir / "junit.xml").getroot()
    assert len(suite.findall(".//testcase")) == len(verdict["slos"])
    assert not suite.findall(".//failure")
    for name in ("report.md", "report.html", "experiment.json", "plan.json", "runs/1/timeline.jsonl"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "undo.json").exists()
    # `chaoslab report` rebuilds the same verdict from the saved timeline.
    before = (run_dir / "verdict.json").read_text()
    subprocess.run([sys.executable, "-m", "chaoslab.cli", "report", str(run_dir)], check=True,
                   capture_output=True, timeout=60)
    assert (run_dir / "verdict.json").read_text() == before


@pytest.mark.slow
def test_a_recovery_target_tighter_than_the_lease_allows_fails_with_exit_1(
        lab: LabLayout, tmp_path: Path) -> None:
    code, out, run_dir = run(lab, "experiments/failing/scheduler-recovery-too-tight.yaml", tmp_path)
    assert code == 1, out
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["passed"] is False
    assert ET.parse(run_dir / "junit.xml").getroot().findall(".//failure")


@pytest.mark.slow
def test_etcd_leader_kill_elects_a_new_leader_within_seconds(lab: LabLayout, tmp_path: Path) -> None:
    code, out, run_dir = run(lab, "experiments/etcd-leader-kill.yaml", tmp_path)
    verdict = json.loads((run_dir / "verdict.json").read_text())
    new_leader = slo(verdict, "etcdTimeToNewLeader")["measured"]
    assert new_leader is not None and new_leader < 5, out
    assert code in (0, 1), out


def test_invalid_experiment_exits_2_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: chaoslab.io/v1alpha1\nkind: Experiment\nmetadata: {name: bad}\n"
                   "spec:\n  duration: soon\n  faults:\n    - {kind: kill-process, component: etcd, signal: HUP}\n")
    proc = subprocess.run([sys.executable, "-m", "chaoslab.cli", "run", str(bad)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "spec.duration" in proc.stderr and "spec.faults[0].signal" in proc.stderr
