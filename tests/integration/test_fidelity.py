"""Fidelity on the real lab: every measured time carries its bracket, the components' own records stand
beside it (and fall inside it), a value straddling its limit is inconclusive, not a failure, and the
reports rebuild byte for byte from the saved timeline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaoslab.lab.config import LabLayout

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ("verdict.json", "junit.xml", "report.md", "report.html")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaoslab.cli", *args], capture_output=True, text=True,
                          timeout=600, check=False, cwd=ROOT)


@pytest.mark.slow
def test_etcd_leader_kill_brackets_its_times_against_etcds_own_log(lab: LabLayout, tmp_path: Path) -> None:
    proc = cli("run", str(ROOT / "experiments/etcd-leader-kill.yaml"), "--no-live", "--target",
               f"lab:{lab.config.name}", "--runs-dir", str(tmp_path))
    out = proc.stdout + proc.stderr
    [run_dir] = sorted(tmp_path.iterdir())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    slos = {s["metric"]: s for s in verdict["slos"]}
    new = slos["etcdTimeToNewLeader"]
    assert new["low"] < new["high"] and new["low"] <= new["measured"] <= new["high"], out
    assert new["high"] - new["low"] < 0.25, new  # sampled fast after the injection
    # etcd's own "became leader at term N" stands beside the figure, inside its bracket.
    assert "ground truth:" in new["evidence"] and "within the bracket" in new["evidence"], new["evidence"]
    elections = slos["etcdLeaderElections"]
    assert elections["low"] == elections["high"] == elections["measured"]
    assert "ground truth: 1 by 1 'became leader' line" in elections["evidence"], elections["evidence"]
    # Followers name the dead leader for a while: that counts as without a leader.
    assert slos["etcdTimeWithoutLeader"]["measured"] > 0.5

    # The same run judged against a limit inside its bracket: inconclusive, a warning, not a failure.
    saved = json.loads((run_dir / "experiment.json").read_text())
    before = {name: (run_dir / name).read_bytes() for name in REPORTS}
    assert cli("report", str(run_dir)).returncode == 0
    assert {name: (run_dir / name).read_bytes() for name in REPORTS} == before  # byte for byte
    middle = round((new["low"] + new["high"]) / 2, 4)
    saved["slos"] = [s | {"threshold": middle} if s["metric"] == "etcdTimeToNewLeader" else s for s in saved["slos"]]
    (run_dir / "experiment.json").write_text(json.dumps(saved))
    assert cli("report", str(run_dir)).returncode == 0
    rejudged = {s["metric"]: s for s in json.loads((run_dir / "verdict.json").read_text())["slos"]}
    assert rejudged["etcdTimeToNewLeader"]["outcome"] == "inconclusive"
    assert "inconclusive" in (run_dir / "report.md").read_text()
