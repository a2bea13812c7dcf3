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

`clients: true` also cuts the hosts on the cut-off side from their clients outside the control plane — the
load balancer and everyone behind it: users, chaoslab's probes, the per-member etcd ports — with the same
`traffic` filter, so `isolate` + `traffic: all` + `clients: true` takes a host off the network entirely.
Where clients come from is the target's answer (`Target.clients`): the lab's haproxy source address in the
host's namespace, a real host's load balancer or client network.

The rules come from `chaoslab.faults.netrules` (a chain per fault on every host involved). Before injecting, a
dead-man's switch is armed that heals the partition `duration + deadman` (60) seconds later even if chaoslab
is killed; a normal revert heals, disarms it and checks that no rule is left.

Through a kubeconfig target with helper pods (`spec.target.helperPod`), each host with rules gets its own
privileged pod on its node running the same commands (`chaoslab.faults.netpods`): it applies them, holds
for the duration and heals — on deletion (the undo, `delete-pod`, one per pod) or by itself when the
duration is over, which is its dead-man's switch.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoslab.clients.leaders import current_etcd_leader
from chaoslab.errors import InjectionError, RevertError, TargetError
from chaoslab.faults import netpods
from chaoslab.faults.base import (
    FaultParams,
    Injection,
    Record,
    Undo,
    arm_switch,
    heal_network,
    ignore_events,
)
from chaoslab.faults.netrules import (
    Command,
    Endpoint,
    Flow,
    Partition,
    heal_partition,
    isolate,
    one_way,
    partition_commands,
    ruled_hosts,
    split,
    wrap,
)
from chaoslab.faults.network import NetworkFault
from chaoslab.targets import Target

TRAFFIC: dict[str, tuple[int, ...] | None] = {"all": None, "peer": (2380,), "client": (2379,)}
HEAL_MARGIN = 60
"""Seconds after the fault's duration at which the dead-man's switch heals if chaoslab did not."""


@dataclass(frozen=True)
class PartitionParams(FaultParams):
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
    clients: bool = False
    """Also cut the cut-off side from clients outside the control plane (load balancer, users, probes);
    default false: only hosts from each other."""

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for settings that contradict each other; the types are the schema's job."""
        out = []
        if self.minority is not None and self.shape != "split":
            out.append(("minority", f"only `shape: split` has a minority (shape is {self.shape}); "
                                    + "remove it or use shape: split"))
        if self.clients and self.traffic == "peer":
            out.append(("clients", "clients never use the etcd peer port, so `traffic: peer` cuts nothing "
                                   + "from them; use traffic: all or client, or drop clients"))
        return out


class PartitionFault(NetworkFault[PartitionParams]):
    kind: ClassVar[str] = "partition"
    params_type: ClassVar[type] = PartitionParams
    level: ClassVar[str] = "node"
    """Acts on hosts (processes, packet filters, kubelets), not through the API."""

    def plan(self, target: Target) -> tuple[str, list[str], Partition]:
        """(role, hosts on the cut-off side, the blocked flows)."""
        p = self.params
        hosts = target.hosts("etcd")
        if len(hosts) < 2:
            raise InjectionError(f"partition: {target.name} has {len(hosts)} etcd host(s); nothing to cut")
        size = 1
        if p.shape == "split":
            size = p.minority if p.minority is not None else (len(hosts) - 1) // 2
            if not 1 <= size <= (len(hosts) - 1) // 2:
                raise InjectionError(
                    f"partition: minority {size} of {len(hosts)} etcd members ({target.name}) is not a "
                    f"minority; give minority: 1" + (f" to {(len(hosts) - 1) // 2}" if len(hosts) > 4 else "")
                    + ("" if len(hosts) > 4 else ", or use a 5-member lab (`chaoslab lab up --hosts 5`)"))
        role, chosen, leader = select_etcd_host(target, self.params.select, self.rng, self.kind)
        ends = {h: target.endpoint(h) for h in hosts}
        ports = TRAFFIC[p.traffic]
        # Fill the small side with followers first, so only `select: leader` moves the leader.
        rest = sorted((h for h in hosts if h != chosen), key=lambda h: (h == leader, h))
        side = [chosen, *rest[:size - 1]]
        near, far = [ends[h] for h in side], [ends[h] for h in hosts if h not in side]
        if p.shape == "split":
            cut = split([near, far], ports)
        elif p.shape == "isolate":
            cut = isolate(near[0], far, ports)
        elif p.direction == "inbound":
            cut = one_way(near, far, ports)
        else:
            cut = one_way(far, near, ports)
        if p.clients:
            cut |= self._from_clients(target, near, ports)
        return role, side, cut

    def _from_clients(self, target: Target, side: list[Endpoint], ports: tuple[int, ...] | None) -> Partition:
        """The same cut between each host of `side` and its clients (one-way keeps its direction)."""
        out: Partition = frozenset()
        for end in side:
            clients = target.clients(end.host)
            if self.params.shape != "one-way":
                out |= isolate(end, [clients], ports)
            elif self.params.direction == "inbound":
                out |= one_way([end], [clients], ports)
            else:
                out |= one_way([clients], [end], ports)
        return out

    def resolve(self, target: Target, index: int) -> Injection:
        role, side, partition = self.plan(target)
        tag = f"p{index}-{uuid.uuid4().hex[:8]}"
        hosts = ruled_hosts(partition)
        flows = sorted(f"{f.src.host}->{f.dst.host}" + (f":{','.join(map(str, f.ports))}" if f.ports else "")
                       for f in partition)
        runner = target.helper_pods()
        if runner is not None:
            # One pod per host with rules, named now: the undo on disk names the pods before they exist.
            undo_pods = netpods.pod_undo(target, runner, "partition", index, hosts, {"tag": tag, "flows": flows})
            return Injection(self.kind, index, "etcd", role, tuple(f"etcd@{h}" for h in side), undo_pods)
        undo = Undo("heal-network", {"tag": tag, "hosts": hosts, "marker": f"chaoslab-{tag}", "flows": flows})
        return Injection(self.kind, index, "etcd", role, tuple(f"etcd@{h}" for h in side), (undo,))

    def host_commands(self, target: Target, injection: Injection) -> netpods.HostCommands:
        """Through helper pods: host → (its rules, its heal), from the flows recorded in the undo."""
        params = injection.undo[0].params
        rules = self.rules(target, params)
        return lambda host: (rules[host], heal_partition(params["tag"]))

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        params = injection.undo[0].params
        if injection.through_pods:
            self.inject_by_pods(target, injection, record)
            return
        # Armed first: from here on the partition is undone even if chaoslab dies.
        arm_switch(target, self.heal(params), self.deadline(), params["marker"])
        try:
            rules = self.rules(target, params)
            # The cut takes effect between these two (the measurement's start): over ssh, seconds after the
            # inject event.
            record("rules-installing", fault=injection.fault, index=injection.index, hosts=sorted(rules))
            for host, commands in rules.items():
                target.run_commands(wrap(commands, target.host_wrap(host)))
            record("rules-installed", fault=injection.fault, index=injection.index)
        except Exception as exc:
            heal_network(target, params)
            raise InjectionError(f"partition: could not install the rules ({exc}); healed again") from exc

    def heal(self, params: Mapping[str, Any]) -> dict[str, list[Command]]:
        return {h: list(heal_partition(params["tag"])) for h in params["hosts"]}

    def rules(self, target: Target, params: Mapping[str, Any]) -> Mapping[str, Sequence[Command]]:
        return partition_commands(params["tag"], recorded_partition(target, params["flows"]))


def select_etcd_host(target: Target, select: str, rng: random.Random, fault: str) -> tuple[str, str, str | None]:
    """(role, host, etcd leader) for `select` (leader, follower, random or host:NAME), resolved now."""
    hosts = target.hosts("etcd")
    try:
        leader = current_etcd_leader(target)
    except TargetError:
        if select in ("leader", "follower"):
            raise
        leader = None  # a host chosen by name or at random needs no leader (a kubeconfig target without etcd)
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
    """The flows `resolve` recorded in the undo (`cp1->cp2`, `cp1->cp2:2380`, `cp1->clients`), as a
    partition."""
    hosts = set(target.hosts("etcd"))

    def end(name: str, other: str) -> Endpoint:
        if name in hosts:
            return target.endpoint(name)
        clients = target.clients(other)
        if clients.host != name:
            raise RevertError(f"partition: flow end {name!r} is neither a host of {target.name} nor its clients")
        return clients

    out = set()
    for text in flows:
        pair, _, ports = text.partition(":")
        src, dst = pair.split("->")
        out.add(Flow(end(src, dst), end(dst, src), tuple(int(x) for x in ports.split(",")) if ports else None))
    return frozenset(out)
