"""The partition fault's planning on a fake five-host target: which hosts end up on which side, what is
cut from clients, what the undo records, and which parameter combinations are refused (with their place)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import fakes
import pytest

from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import build, param_problems
from chaoslab.faults import partition as partition_module
from chaoslab.faults.netrules import Endpoint, Wrap, in_netns
from chaoslab.faults.partition import PartitionFault, PartitionParams, recorded_partition
from chaoslab.spec.loader import load_text

LEADER = "cp3"


class FakeTarget(fakes.FakeTarget):
    """`count` hosts cp1…; records every command it is asked to run."""

    name = "fake"
    renewal_window = 5.0
    lock_path = Path("/nonexistent")

    def __init__(self, count: int = 5) -> None:
        super().__init__([f"cp{i}" for i in range(1, count + 1)])

    def endpoint(self, host: str) -> Endpoint:
        return Endpoint(host, f"10.213.0.{10 + int(host[2:])}")

    def clients(self, host: str) -> Endpoint:
        return Endpoint("clients", "10.213.0.2", managed=False)

    def host_wrap(self, host: str) -> Wrap:
        return in_netns(f"lab-{host}")


@pytest.fixture(autouse=True)
def leader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partition_module, "current_etcd_leader", lambda target: LEADER)


def fault(**params: Any) -> PartitionFault:
    return PartitionFault(PartitionParams(**params), duration=10, rng=random.Random(3))


def pairs(partition: frozenset[Any]) -> set[tuple[str, str]]:
    return {(f.src.host, f.dst.host) for f in partition}


def test_five_members_split_the_leader_and_one_follower_from_the_other_three() -> None:
    role, side, cut = fault(shape="split", select="leader", minority=2).plan(FakeTarget())  # type: ignore[arg-type]
    assert role == "leader" and side == ["cp3", "cp1"]
    assert pairs(cut) == {(a, b) for x, y in ((side, ["cp2", "cp4", "cp5"]), (["cp2", "cp4", "cp5"], side))
                          for a in x for b in y}


def test_a_follower_split_keeps_the_leader_on_the_majority_side() -> None:
    for seed in range(10):
        f = PartitionFault(PartitionParams(shape="split", select="follower"), rng=random.Random(seed))
        _, side, _ = f.plan(FakeTarget())  # type: ignore[arg-type]
        assert len(side) == 2 and LEADER not in side  # the default minority of 5 is 2


@pytest.mark.parametrize(("count", "minority", "message"), [
    (5, 3, r"minority 3 of 5 etcd members \(fake\) is not a minority; give minority: 1 to 2$"),
    (3, 2, (r"minority 2 of 3 etcd members \(fake\) is not a minority; give minority: 1, or use a "
           r"5-member lab \(`chaoslab lab up --hosts 5`\)")),
])
def test_a_minority_that_is_not_one_is_refused(count: int, minority: int, message: str) -> None:
    with pytest.raises(InjectionError, match=message):
        fault(shape="split", minority=minority).plan(FakeTarget(count))  # type: ignore[arg-type]


def test_isolating_a_host_from_clients_cuts_the_load_balancer_both_ways_and_rules_stay_on_hosts() -> None:
    target = FakeTarget()
    f = fault(shape="isolate", select="host:cp2", clients=True)
    _, side, cut = f.plan(target)  # type: ignore[arg-type]
    assert side == ["cp2"]
    assert {("cp2", "clients"), ("clients", "cp2")} <= pairs(cut)
    assert not {p for p in pairs(cut) if "clients" in p and "cp2" not in p}
    injection = f.resolve(target, 0)  # type: ignore[arg-type]
    undo = injection.undo[0].params
    assert undo["hosts"] == ["cp1", "cp2", "cp3", "cp4", "cp5"]
    assert "cp2->clients" in undo["flows"] and "clients->cp2" in undo["flows"]
    assert recorded_partition(target, undo["flows"]) == f.plan(target)[2]  # type: ignore[arg-type]


def test_without_clients_the_load_balancer_is_not_cut() -> None:
    _, _, cut = fault(shape="isolate", select="leader").plan(FakeTarget())  # type: ignore[arg-type]
    assert not any("clients" in p for p in pairs(cut))


def test_a_minority_split_from_clients_cuts_every_host_of_the_small_side_on_the_given_port() -> None:
    _, side, cut = fault(shape="split", select="leader", traffic="client", clients=True).plan(
        FakeTarget())  # type: ignore[arg-type]
    from_clients = {f for f in cut if f.src.host == "clients"}
    assert {f.dst.host for f in from_clients} == set(side) and {f.ports for f in from_clients} == {(2379,)}


@pytest.mark.parametrize(("direction", "cut_pair"), [("inbound", ("clients", "cp3")),
                                                     ("outbound", ("cp3", "clients"))])
def test_one_way_from_clients_keeps_its_direction(direction: str, cut_pair: tuple[str, str]) -> None:
    _, _, cut = fault(shape="one-way", direction=direction, clients=True).plan(FakeTarget())  # type: ignore[arg-type]
    assert {p for p in pairs(cut) if "clients" in p} == {cut_pair}


def test_the_dead_mans_switch_is_armed_first_and_heals_only_hosts_that_got_rules() -> None:
    target = FakeTarget(3)
    f = fault(shape="isolate", select="host:cp1", clients=True)
    injection = f.resolve(target, 0)  # type: ignore[arg-type]
    f.inject(target, injection)  # type: ignore[arg-type]
    switch = target.ran[0]
    assert switch[:3] == ("setsid", "-f", "sh") and switch[-1] == injection.undo[0].params["marker"]
    assert "lab-clients" not in switch[4] and all(f"lab-cp{i} iptables" in switch[4] for i in (1, 2, 3))
    assert "sleep 70 " in switch[4]
    # Each host's rules after the switch, in one transaction each.
    installs = target.commands[1:]
    assert [c.argv for c in installs] == [(*in_netns(f"lab-cp{i}")(()), "iptables-restore", "-w", "--noflush")
                                         for i in (1, 2, 3)]
    assert f"-A CHAOSLAB-{injection.undo[0].params['tag']} -s 10.213.0.2 -j DROP\n" in (installs[0].stdin or "")


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"shape": "isolate", "minority": 2}, "minority", "only `shape: split` has a minority"),
    ({"traffic": "peer", "clients": True}, "clients", "`traffic: peer` cuts nothing from them"),
])
def test_contradicting_parameters_are_named_with_their_field(params: dict[str, Any], field: str,
                                                             message: str) -> None:
    [(name, text)] = param_problems("partition", params)
    assert name == field and message in text
    with pytest.raises(SpecError, match=rf"^exp.yaml:7 spec.faults\[0\].{field}: .*"):
        build("partition", params, where="exp.yaml:7 spec.faults[0]")


def test_the_loader_reports_contradicting_parameters_at_their_line() -> None:
    text = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: bad}
spec:
  faults:
    - kind: partition
      traffic: peer
      clients: true
  duration: 5s
"""
    with pytest.raises(SpecError) as err:
        load_text(text, "bad.yaml")
    assert err.value.problems == [
        ("bad.yaml:8 spec.faults[0].clients: clients never use the etcd peer port, so `traffic: peer` cuts "
        "nothing from them; use traffic: all or client, or drop clients")]


def test_clients_default_to_false_so_existing_experiments_keep_their_meaning() -> None:
    text = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: ok}
spec:
  faults: [{kind: partition, shape: split, minority: 2}]
  duration: 5s
"""
    [exp] = load_text(text, "ok.yaml")
    assert exp.faults[0].params["clients"] is False
