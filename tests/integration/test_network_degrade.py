"""network-degrade on the real lab: random loss on the leader's peer links goes in on that host only, etcd
keeps its data, and everything is healed; delay needs netem, and where the kernel lacks it the refusal
says so and leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from test_partition import ROOT, chains, command, value

from chaoslab.lab.config import LabLayout
from chaoslab.netrules import Command, wrap
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
    path = tmp_path / f"{name}.yaml"
    path.write_text(EXPERIMENT.format(name=name, lab=lab.config.name, fault=fault))
    return subprocess.Popen(command(path, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)


def qdiscs(target: LabTarget) -> dict[str, str]:
    return {h: target.run_commands(wrap([Command(("tc", "qdisc", "show", "dev", "eth0"))], target.host_wrap(h)))[0]
            for h in target.hosts("etcd")}


@pytest.mark.slow
def test_loss_on_the_leaders_peer_links_is_random_drops_on_that_host_only_and_heals(
        lab: LabLayout, tmp_path: Path) -> None:
    target = LabTarget(lab)
    proc = start(tmp_path, lab, "lossy-leader", "select: leader, loss: 30, traffic: peer")
    seen: dict[str, list[str]] = {}
    deadline = time.monotonic() + 60
    while not seen and proc.poll() is None and time.monotonic() < deadline:
        seen = {h: rules for h, rules in chains(target).items() if rules}
        time.sleep(0.1)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert len(seen) == 1, seen  # the degraded host only
    rules = next(iter(seen.values()))
    drops = [r for r in rules if r.endswith("-j DROP")]
    assert drops and all("--probability 0.2999" in r and "2380" in r for r in drops), rules
    run_dir = max((tmp_path / "runs").iterdir())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert value(verdict, "lostWrites") == 0
    assert not any(chains(target).values())


@pytest.mark.slow
def test_delay_runs_with_netem_or_is_refused_saying_the_kernel_lacks_it(lab: LabLayout, tmp_path: Path) -> None:
    target = LabTarget(lab)
    proc = start(tmp_path, lab, "slow-follower", "select: follower, delay: 50ms")
    out = proc.communicate(timeout=300)[0]
    if proc.returncode != 0:
        assert "no netem qdisc" in out, out
    assert not any("netem" in q for q in qdiscs(target).values())
    assert not any(chains(target).values())
