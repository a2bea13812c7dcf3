"""Every fault is reverted: after Ctrl-C, after chaoslab itself is SIGKILLed (`chaoslab recover`), and a
second run against the same target is refused. Uses a STOP (pause) of an etcd follower, the fault whose
revert matters most: without it the member stays frozen forever."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_runs import chaoslab, recover

from chaoslab.lab.config import LabLayout
from chaoslab.targets.lab import LabTarget

PAUSE = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: pause-follower}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - {{kind: kill-process, component: etcd, select: follower, signal: STOP}}
  duration: 60s
  probes: [etcd, apiserver]
  slo:
    etcdLeaderElections: {{max: 0}}
"""


def state(pid: int) -> str:
    """The process state letter from /proc: T = stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def stopped_etcd(target: LabTarget) -> list[str]:
    return [h for h in target.hosts("etcd") if (pid := target.pid("etcd", h)) and state(pid) == "T"]


def start_run(lab: LabLayout, tmp_path: Path) -> subprocess.Popen[bytes]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    exp = tmp_path / "pause.yaml"
    exp.write_text(PAUSE.format(lab=lab.config.name))
    return subprocess.Popen(chaoslab("run", str(exp), "--no-live",
                             "--runs-dir", str(tmp_path / "runs")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_injected(target: LabTarget, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if paused := stopped_etcd(target):
            return paused[0]
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        time.sleep(0.1)
    raise AssertionError("the follower was never paused")


@pytest.mark.slow
def test_ctrl_c_reverts_at_once(lab: LabLayout, tmp_path: Path) -> None:
    target = LabTarget(lab)
    proc = start_run(lab, tmp_path)
    wait_injected(target, proc)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=30)[0].decode()
    assert stopped_etcd(target) == [], out
    assert proc.returncode != 0
    run_dir = next((tmp_path / "runs").iterdir())
    assert not (run_dir / "undo.json").exists()
    events = [json.loads(line) for line in (run_dir / "runs" / "1" / "timeline.jsonl").read_text().splitlines()]
    kinds = [e.get("event") for e in events if "event" in e]
    assert kinds.index("inject") < kinds.index("revert")
    assert "abort" in kinds


@pytest.mark.slow
def test_killed_run_leaves_its_undo_and_recover_replays_it(lab: LabLayout, tmp_path: Path) -> None:
    target = LabTarget(lab)
    proc = start_run(lab, tmp_path)
    host = wait_injected(target, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = next((tmp_path / "runs").iterdir())
    undo = json.loads((run_dir / "undo.json").read_text())
    assert undo[0]["undo"][0]["params"] == {"component": "etcd", "host": host, "signal": "CONT"}
    assert stopped_etcd(target) == [host]
    result = recover(run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stopped_etcd(target) == []
    assert not (run_dir / "undo.json").exists()


@pytest.mark.slow
def test_a_second_run_against_the_same_target_is_refused(lab: LabLayout, tmp_path: Path) -> None:
    target = LabTarget(lab)
    first = start_run(lab, tmp_path / "a")
    try:
        wait_injected(target, first)
        second = start_run(lab, tmp_path / "b")
        out = second.communicate(timeout=60)[0].decode()
        assert second.returncode == 3, out
        assert f"another run is active against lab '{lab.config.name}'" in out
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert stopped_etcd(target) == []
