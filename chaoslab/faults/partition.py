"""`partition`: cut the network between control-plane hosts with real packet filters, by role or by host.

Shapes (`shape`):
- `isolate`: the selected host (the etcd `leader`, a `follower`, a `random` one or `host:NAME`) is cut
  from every other host, both ways;
- `split`: the selected host and `minority - 1` more (followers first, so `select: follower` keeps the
  leader on the majority side) against the rest; `minority` defaults to the largest minority (1 of 3, 2 of 5);
- `one-way`: only packets *from* the other hosts *to* the selected one are dropped (`direction: inbound`),
  or only those *from* it (`outbound`). TCP needs both directions, so TCP connections fail both ways and
  only datagrams get through: what a one-way fault does to etcd's TCP peer links.

`traffic` narrows what is cut: `all` (every packet between the hosts), `peer` (etcd peer traffic, TCP
2380: raft breaks while clients still reach every member) or `client` (TCP 2379 between hosts).

The rules come from `chaoslab.netrules` (a chain per fault on every host involved). Before injecting, a
dead-man's switch is armed that heals the partition `duration + deadman` (60) seconds later even if chaoslab
is killed; a normal revert heals, disarms it and checks that no rule is left.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import ClassVar

from chaoslab.errors import InjectionError
from chaoslab.faults.base import Injection, Undo, heal_network
from chaoslab.leaders import etcd_leader
from chaoslab.netrules import (
    Command,
    Flow,
    Partition,
    dead_mans_switch,
    heal_partition,
    isolate,
    one_way,
    partition_commands,
    split,
    wrap,
)
from chaoslab.targets import Target

TRAFFIC: dict[str, tuple[int, ...] | None] = {"all": None, "peer": (2380,), "client": (2379,)}
HEAL_MARGIN = 60
"""Seconds after the fault's duration at which the dead-man's switch heals if chaoslab did not."""


@dataclass(frozen=True)
class PartitionParams:
    shape: str = "isolate"
    """isolate, split or one-way."""
    select: str = "leader"
    """The host on the cut-off side: leader, follower, random or host:NAME (etcd roles)."""
    traffic: str = "all"
    """all, peer (TCP 2380) or client (TCP 2379)."""
    minority: int | None = None
    """split: how many hosts are on the small side (default: the largest minority)."""
    direction: str = "inbound"
    """one-way: inbound (the selected host receives nothing) or outbound (it sends nothing)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the dead-man's switch heals if chaoslab did not (default 60)."""


class PartitionFault:
    kind: ClassVar[str] = "partition"
    params_type: ClassVar[type] = PartitionParams

    def __init__(self, params: PartitionParams, duration: float = 0.0, rng: random.Random | None = None) -> None:
        self.params = params
        self.duration = duration
        self.rng = rng or random.Random()

    def plan(self, target: Target) -> tuple[str, list[str], Partition]:
        """(role, hosts on the cut-off side, the blocked flows)."""
        p = self.params
        hosts = target.hosts("etcd")
        if len(hosts) < 2:
            raise InjectionError(f"partition: {target.name} has {len(hosts)} etcd host(s); nothing to cut")
        role, chosen, leader = select_etcd_host(target, self.params.select, self.rng, self.kind)
        ends = {h: target.endpoint(h) for h in hosts}
        ports = TRAFFIC[p.traffic]
        if p.shape == "split":
            size = p.minority if p.minority is not None else (len(hosts) - 1) // 2
            if not 1 <= size < len(hosts):
                raise InjectionError(f"partition: minority {size} must be between 1 and {len(hosts) - 1}")
            # Fill the small side with followers first, so only `select: leader` moves the leader.
            rest = sorted((h for h in hosts if h != chosen), key=lambda h: (h == leader, h))
            side = [chosen, *rest[:size - 1]]
            others = [ends[h] for h in hosts if h not in side]
            return role, side, split([[ends[h] for h in side], others], ports)
        others = [ends[h] for h in hosts if h != chosen]
        if p.shape == "isolate":
            return role, [chosen], isolate(ends[chosen], others, ports)
        if p.direction == "inbound":
            return role, [chosen], one_way([ends[chosen]], others, ports)
        return role, [chosen], one_way(others, [ends[chosen]], ports)

    def resolve(self, target: Target, index: int) -> Injection:
        role, side, partition = self.plan(target)
        tag = f"p{index}-{uuid.uuid4().hex[:8]}"
        hosts = sorted({f.src.host for f in partition} | {f.dst.host for f in partition})
        flows = sorted(f"{f.src.host}->{f.dst.host}" + (f":{','.join(map(str, f.ports))}" if f.ports else "")
                       for f in partition)
        undo = Undo("heal-network", {"tag": tag, "hosts": hosts, "marker": f"chaoslab-{tag}", "flows": flows})
        return Injection(self.kind, index, "etcd", role, tuple(f"etcd@{h}" for h in side), (undo,))

    def inject(self, target: Target, injection: Injection) -> None:
        params = injection.undo[0].params
        tag, marker = params["tag"], params["marker"]
        partition = recorded_partition(target, params["flows"])
        heal = [c for h in params["hosts"] for c in wrap(heal_partition(tag), target.host_wrap(h))]
        # Armed first: from here on the partition is undone even if chaoslab dies.
        target.run_commands([Command(dead_mans_switch(heal, int(self.duration) + self.params.deadman, marker))])
        rules = partition_commands(tag, partition)
        try:
            for host, commands in rules.items():
                target.run_commands(wrap(commands, target.host_wrap(host)))
        except Exception as exc:
            heal_network(target, params)
            raise InjectionError(f"partition: could not install the rules ({exc}); healed again") from exc


def select_etcd_host(target: Target, select: str, rng: random.Random, fault: str) -> tuple[str, str, str | None]:
    """(role, host, etcd leader) for `select` (leader, follower, random or host:NAME), resolved now."""
    hosts = target.hosts("etcd")
    members = target.etcd_members()
    try:
        leader = etcd_leader(members)
    finally:
        for m in members.values():
            m.close()
    if select.startswith("host:"):
        host = select.split(":", 1)[1]
        if host not in hosts:
            raise InjectionError(f"{fault}: {target.name} has no etcd host {host!r}; hosts: {', '.join(hosts)}")
        return select, host, leader
    if select == "random":
        return "random", rng.choice(hosts), leader
    if leader is None:
        raise InjectionError(f"{fault}: etcd of {target.name} has no leader right now; is the control "
                             f"plane healthy? (`chaoslab lab status`)")
    if select == "leader":
        return "leader", leader, leader
    return "follower", rng.choice([h for h in hosts if h != leader]), leader


def recorded_partition(target: Target, flows: list[str]) -> Partition:
    """The flows `resolve` recorded in the undo (`cp1->cp2` or `cp1->cp2:2380`), as a partition."""
    out = set()
    for text in flows:
        pair, _, ports = text.partition(":")
        src, dst = pair.split("->")
        out.add(Flow(target.endpoint(src), target.endpoint(dst),
                     tuple(int(x) for x in ports.split(",")) if ports else None))
    return frozenset(out)
