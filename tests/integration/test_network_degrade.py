"""network-degrade on the real lab: random loss on the leader's peer links goes in on that host only, etcd
keeps its data, and everything is healed; delay runs with netem where the kernel has it, else with the
NFQUEUE delayer: above the election timeout it forces an election, a small one does not, and neither
loses a write or leaves a rule, a qdisc or a delayer behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_runs import chaoslab
from test_partition import ROOT, chains, command, value
from waiting import etcd_leaders

from chaoslab.faults.netrules import Command, wrap
from chaoslab.lab.config import LabLayout
from chaoslab.targets.lab import LabTarget

EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - {{kind: network-degrade, {fault}}}
  duration: 8s
  probes: [etcd, apiserver, writes]
  slo:
    lostWrites: {{max: 0}}
"""


def start(tmp_path: Path, lab: LabLayout, name: str, fault: str) -> subprocess.Popen[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(EXPERIMENT.format(name=name, lab=lab.config.name, fault=fault))
    return subprocess.Popen(command(path, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, start_new_session=True)


def qdiscs(target: LabTarget) -> dict[str, str]:
    return {h: target.run_commands(wrap([Command(("tc", "qdisc", "show", "dev", "eth0"))], target.host_wrap(h)))[0]
            for h in target.hosts("etcd")}


def complete_loss(rules: list[str], peers: int) -> bool:
    """A degraded host's whole rule set: its chain, a random drop each way and for either end's port 2380 per
    peer, and both hooks."""
    drops = [r for r in rules if r.endswith("-j DROP")]
    hooks = {r.split()[1] for r in rules if r.startswith(("-A INPUT -j CHAOSLAB", "-A OUTPUT -j CHAOSLAB"))}
    return any(r.startswith("-N CHAOSLAB") for r in rules) and len(drops) == 4 * peers and hooks == {"INPUT", "OUTPUT"}


@pytest.mark.slow
def test_loss_on_the_leaders_peer_links_is_random_drops_on_that_host_only_and_heals(
        lab: LabLayout, tmp_path: Path) -> None:
    target = LabTarget(lab)
    peers = len(target.hosts("etcd")) - 1
    proc = start(tmp_path, lab, "lossy-leader", "select: leader, loss: 30, traffic: peer")
    seen: dict[str, list[str]] = {}
    partial: list[dict[str, list[str]]] = []
    deadline = time.monotonic() + 60
    # Wait for the complete rule set; every look on the way sees none of it or all of it (one transaction).
    while not any(complete_loss(rules, peers) for rules in seen.values()):
        assert proc.poll() is None and time.monotonic() < deadline, f"never saw the whole rule set: {seen}"
        seen = {h: rules for h, rules in chains(target).items() if rules}
        if any(not complete_loss(rules, peers) for rules in seen.values()):
            partial.append(seen)
        time.sleep(0.1)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert not partial, f"half a fault was visible: {partial}"
    assert len(seen) == 1, seen  # the degraded host only
    rules = next(iter(seen.values()))
    drops = [r for r in rules if r.endswith("-j DROP")]
    assert drops and all("--probability 0.2999" in r and "2380" in r for r in drops), rules
    run_dir = max((tmp_path / "runs").iterdir())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert value(verdict, "lostWrites") == 0
    assert not any(chains(target).values())


def delayers() -> list[str]:
    out = subprocess.run(["pgrep", "-af", "chaoslab[.]faults[.]delayer --queue"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()


def delayed(tmp_path: Path, lab: LabLayout, name: str, fault: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """Run a delay experiment; its verdict and its `degrade` event, once healed and checked clean."""
    target = LabTarget(lab)
    proc = start(tmp_path / name, lab, name, fault)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    run_dir = max((tmp_path / name / "runs").iterdir())
    events = [json.loads(line) for line in (run_dir / "runs" / "1" / "timeline.jsonl").read_text().splitlines()[1:]]
    (degrade,) = [e["detail"] for e in events if e.get("event") == "degrade"]
    assert not any("netem" in q for q in qdiscs(target).values())
    assert not any(chains(target).values())
    assert not delayers()
    return json.loads((run_dir / "verdict.json").read_text()), degrade


@pytest.mark.slow
def test_a_delay_above_the_election_timeout_on_the_leaders_links_forces_an_election_and_loses_no_write(
        lab: LabLayout, tmp_path: Path) -> None:
    # Above etcd's randomized election timeout, which lies in [1, 2) × --election-timeout (1000 ms on the
    # lab): a follower whose timer was drawn at 1.7 s rides out a 1.5 s gap in the heartbeats, and with
    # both followers doing so (about one run in four) 1500 ms forced no election.
    verdict, degrade = delayed(tmp_path, lab, "slow-leader", "select: leader, delay: 2500ms")
    assert degrade["mechanism"] in ("netem", "nfqueue") and degrade["delay_ms"] == 2500
    assert (value(verdict, "etcdLeaderElections") or 0) >= 1
    assert value(verdict, "lostWrites") == 0


@pytest.mark.slow
def test_a_small_delay_on_the_leaders_links_forces_no_election(lab: LabLayout, tmp_path: Path) -> None:
    verdict, degrade = delayed(tmp_path, lab, "bit-slow-leader", "select: leader, delay: 50ms, jitter: 10ms")
    assert degrade["jitter_ms"] == 10
    assert value(verdict, "etcdLeaderElections") == 0
    assert value(verdict, "lostWrites") == 0


@pytest.mark.slow
def test_the_dead_mans_switch_heals_a_delay_after_chaoslab_is_killed(lab: LabLayout, tmp_path: Path) -> None:
    target = LabTarget(lab)
    proc = start(tmp_path, lab, "killed-mid-delay", "select: leader, delay: 1500ms, deadman: 5")
    deadline = time.monotonic() + 60

    def degraded() -> bool:  # netem on the leader, or the NFQUEUE rules hooked in on a peer
        return any("netem" in q for q in qdiscs(target).values()) or any(
            any(r.startswith("-A INPUT -j CHAOSLAB") for r in rules) for rules in chains(target).values())

    while not degraded():
        assert time.monotonic() < deadline and proc.poll() is None, "the delay was never put in place"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # duration 8 s + deadman 5 s after injection: the switch removes the rules and qdisc, and each delayer
    # ends by itself at the same deadline.
    deadline = time.monotonic() + 30
    while any(chains(target).values()) or delayers() or any("netem" in q for q in qdiscs(target).values()):
        assert time.monotonic() < deadline, f"still degraded: {chains(target)} {delayers()} {qdiscs(target)}"
        time.sleep(0.5)
    assert len(etcd_leaders(target, timeout=3)) == 1
    run_dir = max((tmp_path / "runs").iterdir())
    rec = subprocess.run(chaoslab("recover", str(run_dir)), capture_output=True,
                         text=True, timeout=60, check=False, cwd=ROOT)
    assert rec.returncode == 0, rec.stdout + rec.stderr
