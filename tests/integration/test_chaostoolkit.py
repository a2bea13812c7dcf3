"""chaoslab inside Chaos Toolkit, on the real lab: the real `chaos` command (the venv's entry point) runs
experiments exported by `chaoslab export --to chaostoolkit`; the journal must carry chaoslab's verdict and
the rollback must have reverted the fault. Also `chaos discover chaoslab --no-install`, and `chaoslab run`
on a Chaos Toolkit file (the import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaoslab.lab.config import LabLayout
from chaoslab.targets.lab import LabTarget

ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).with_name("chaos")

# A follower of the kube-controller-manager paused (STOP) for a few seconds: the rollback must resume it
# (CONT), or it stays frozen for good. A follower holds no Lease, so nothing else may notice.
PAUSE = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: ctk-pause-follower, description: Pause a controller-manager follower.}
spec:
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - {kind: kill-process, component: kube-controller-manager, select: follower, signal: STOP}
  duration: 5s
  probes: [etcd, lease, apiserver]
  settle: 2s
  slo:
    controllerManagerLeaderElections: {max: 0}
    etcdLeaderElections: {max: 0}
    recoveryTime: {max: 30s}
"""


def env() -> dict[str, str]:
    # `chaos` imports chaoslab: this checkout's, whatever the venv has installed.
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def export(source: Path, out: Path) -> dict[str, Any]:
    subprocess.run([sys.executable, "-m", "chaoslab", "export", "--to", "chaostoolkit", str(source), "-o",
                    str(out)], check=True, capture_output=True, timeout=60, env=env())
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def chaos_run(lab: LabLayout, experiment: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    journal = tmp_path / "journal.json"
    proc = subprocess.run([str(CHAOS), "run", str(experiment), "--journal-path", str(journal),
                           "--var", f"chaoslab_target=lab:{lab.config.name}",
                           "--var", f"chaoslab_runs_dir={tmp_path / 'runs'}"],
                          capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path, env=env())
    assert journal.exists(), proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(journal.read_text())
    return proc, data


def state(pid: int) -> str:
    """The process state letter from /proc: T = stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def stopped(target: LabTarget, component: str) -> list[str]:
    return [h for h in target.hosts(component) if (pid := target.pid(component, h)) and state(pid) == "T"]


@pytest.fixture(autouse=True)
def needs_chaos() -> None:
    if not CHAOS.exists():
        pytest.skip(f"no `chaos` next to {sys.executable}; install chaoslab's dependencies")


@pytest.mark.slow
def test_chaos_run_of_an_exported_pause_puts_the_verdict_in_the_journal_and_resumes_the_process(
        lab: LabLayout, tmp_path: Path) -> None:
    source = tmp_path / "pause.yaml"
    source.write_text(PAUSE)
    experiment = tmp_path / "pause.json"
    export(source, experiment)
    proc, journal = chaos_run(lab, experiment, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert journal["status"] == "completed", out
    # The method injected: the journal says what the action hit and how to undo it.
    injected = journal["run"][0]["output"]["injection"]
    assert injected["component"] == "kube-controller-manager" and injected["role"] == "follower"
    assert injected["undo"][0]["params"]["signal"] == "CONT"
    # The rollback reverted exactly that, and nothing is left paused or pending.
    reverted = journal["rollbacks"][0]["output"]["reverted"]
    assert [r["targets"] for r in reverted] == [injected["targets"]]
    assert stopped(LabTarget(lab), "kube-controller-manager") == []
    assert not list((tmp_path / "runs").glob("chaostoolkit-*"))
    # chaoslab's verdict is in the journal, and its run directory holds the reports.
    entry = journal["chaoslab"]
    assert entry["passed"] is True, json.dumps(entry, indent=1)
    slos = {s["metric"]: s for s in entry["verdict"]["slos"]}
    assert slos["controllerManagerLeaderElections"]["measured"] == 0
    assert slos["recoveryTime"]["measured"] is not None
    run_dir = Path(entry["runDirectory"])
    for name in ("verdict.json", "junit.xml", "report.md", "report.html", "runs/1/timeline.jsonl"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "verdict.json").read_text()) == entry["verdict"]
    events = [json.loads(line) for line in (run_dir / "runs/1/timeline.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events if "event" in e]
    assert kinds.index("inject") < kinds.index("revert") < kinds.index("run-end")


@pytest.mark.slow
def test_chaos_run_of_exported_etcd_leader_kill_measures_the_election(lab: LabLayout, tmp_path: Path) -> None:
    experiment = tmp_path / "etcd-leader-kill.json"
    export(ROOT / "experiments/etcd-leader-kill.yaml", experiment)
    proc, journal = chaos_run(lab, experiment, tmp_path)
    out = proc.stdout + proc.stderr
    assert journal["run"][0]["output"]["injection"]["role"] == "leader", out
    slos = {s["metric"]: s for s in journal["chaoslab"]["verdict"]["slos"]}
    new_leader = slos["etcdTimeToNewLeader"]["measured"]
    assert new_leader is not None and new_leader < 5, json.dumps(journal["chaoslab"], indent=1)
    assert journal["rollbacks"][0]["status"] == "succeeded"  # KILL: nothing to undo, still a clean rollback


def test_chaos_discover_lists_chaoslab_actions_and_probes(lab: LabLayout, tmp_path: Path) -> None:
    out = tmp_path / "discovery.json"
    proc = subprocess.run([str(CHAOS), "discover", "chaoslab", "--no-install", "--discovery-path", str(out)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    discovery = json.loads(out.read_text())
    assert discovery["extension"]["name"] == "chaoslab"
    found = {(a["type"], a["name"]): a for a in discovery["activities"]}
    assert {("action", "inject_fault"), ("action", "revert_fault"), ("action", "kill_process"),
            ("action", "partition"), ("action", "network_degrade"), ("probe", "steady_state"),
            ("probe", "etcd_leader"), ("probe", "lease_holder"), ("probe", "apiserver_ready")} <= set(found)
    inject = {a["name"]: a for a in found[("action", "inject_fault")]["arguments"]}
    assert inject["kind"] == {"name": "kind", "type": "string"}
    assert inject["params"]["type"] == "mapping"
    assert all(a["mod"].startswith("chaoslab.chaostoolkit.") for a in discovery["activities"])


@pytest.mark.slow
def test_chaoslab_run_takes_a_chaos_toolkit_experiment(lab: LabLayout, tmp_path: Path) -> None:
    source = tmp_path / "pause.yaml"
    source.write_text(PAUSE)
    experiment = tmp_path / "pause.json"
    export(source, experiment)
    proc = subprocess.run([sys.executable, "-m", "chaoslab", "run", str(experiment), "--no-live",
                           "--target", f"lab:{lab.config.name}", "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=600, check=False, env=env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["experiment"] == "ctk-pause-follower" and verdict["passed"] is True
    assert stopped(LabTarget(lab), "kube-controller-manager") == []
