"""`network-degrade`: make one control-plane host's links to its peers lossy or slow, without cutting them.

- `loss` (percent): packets between the selected host and the other hosts are dropped at random, both ways,
  by iptables `statistic` rules on the selected host (`chaoslab.netrules.loss_commands`). Works on any
  kernel with iptables; healed, checked and covered by the dead-man's switch exactly like a partition.
- `delay` and `jitter`: `tc netem` on the selected host's interface, for packets toward the other hosts
  (`chaoslab.netrules.degrade_commands`). Needs the kernel's `sch_netem` (and `sch_prio`); where they are
  missing, injection is refused with that reason and nothing is left behind.

Crossing etcd's election timeout (1 s by default) with `delay` makes followers campaign; a few percent of
`loss` stretches heartbeats into sporadic elections; both show up as `etcdLeaderElections`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import ClassVar

from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults.base import Injection, Undo, arm_switch, heal_network
from chaoslab.faults.partition import HEAL_MARGIN, TRAFFIC, select_etcd_host
from chaoslab.netrules import (
    Netem,
    degrade_commands,
    heal_degrade,
    heal_partition,
    loss_commands,
    wrap,
)
from chaoslab.spec.durations import parse_duration
from chaoslab.targets import Target


@dataclass(frozen=True)
class DegradeParams:
    select: str = "leader"
    """The degraded host by etcd role: leader, follower, random or host:NAME."""
    loss: float = 0.0
    """Percent of packets dropped between it and the other hosts, each way (0 = none)."""
    delay: str | float = 0
    """Added one-way delay toward the other hosts (netem), e.g. `1500ms`."""
    jitter: str | float = 0
    """Random variation of the delay (netem); needs a delay."""
    traffic: str = "all"
    """loss only: all, peer (TCP 2380) or client (TCP 2379); netem delays every packet toward the peers."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the dead-man's switch heals if chaoslab did not (default 60)."""

    @property
    def netem(self) -> Netem | None:
        """The netem part (delay, jitter), or None when only loss is asked for."""
        delay = round(parse_duration(self.delay, "delay") * 1000)
        jitter = round(parse_duration(self.jitter, "jitter") * 1000)
        return Netem(delay_ms=delay, jitter_ms=jitter) if delay or jitter else None

    def __post_init__(self) -> None:
        try:
            netem = self.netem
        except ValueError as exc:
            raise SpecError([f"network-degrade: {exc}"]) from None
        if isinstance(self.loss, bool) or not 0 <= self.loss <= 100:
            raise SpecError([f"network-degrade: loss {self.loss!r} must be a percentage from 0 to 100"])
        if netem is None and not self.loss:
            raise SpecError(["network-degrade: set loss, delay or both; there is nothing to degrade"])


class NetworkDegrade:
    kind: ClassVar[str] = "network-degrade"
    params_type: ClassVar[type] = DegradeParams
    level: ClassVar[str] = "node"
    """Acts on hosts (processes, packet filters, kubelets), not through the API."""

    def __init__(self, params: DegradeParams, duration: float = 0.0, rng: random.Random | None = None) -> None:
        self.params = params
        self.duration = duration
        self.rng = rng or random.Random()

    def resolve(self, target: Target, index: int) -> Injection:
        role, host, _ = select_etcd_host(target, self.params.select, self.rng, self.kind)
        peers = [h for h in target.hosts("etcd") if h != host]
        if not peers:
            raise InjectionError(f"network-degrade: {target.name} has no other etcd host to degrade links to")
        tag = f"d{index}-{uuid.uuid4().hex[:8]}"
        devices = {}
        if self.params.netem is not None:
            device = target.endpoint(host).device
            if device is None:
                raise InjectionError(f"network-degrade: {target.name} does not say which interface {host} "
                                     f"uses; delay and jitter need it")
            devices[host] = device
        undo = Undo("heal-network", {"tag": tag, "hosts": [host], "marker": f"chaoslab-{tag}", "flows": [],
                                     "peers": peers, "devices": devices})
        return Injection(self.kind, index, "etcd", role, (f"etcd@{host}",), (undo,))

    def inject(self, target: Target, injection: Injection) -> None:
        p, params = self.params, injection.undo[0].params
        tag, (host,) = params["tag"], params["hosts"]
        how = target.host_wrap(host)
        heal = [*heal_partition(tag), *(c for dev in params["devices"].values() for c in heal_degrade(dev))]
        arm_switch(target, {host: heal}, int(self.duration) + p.deadman, params["marker"])
        me, peers = target.endpoint(host), [target.endpoint(h) for h in params["peers"]]
        try:
            if p.loss:
                target.run_commands(wrap(loss_commands(tag, me, peers, p.loss, TRAFFIC[p.traffic]), how))
            if p.netem is not None:
                target.run_commands(wrap(degrade_commands(params["devices"][host], p.netem, peers), how))
        except Exception as exc:
            heal_network(target, params)
            hint = ("; this kernel has no netem qdisc (sch_netem): delay and jitter cannot run here, loss can"
                    if "qdisc kind is unknown" in str(exc) else "")
            raise InjectionError(f"network-degrade: could not degrade {host} ({exc}){hint}; healed again") from exc
