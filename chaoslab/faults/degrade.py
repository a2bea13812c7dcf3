"""`network-degrade`: make one control-plane host's links to its peers lossy or slow, without cutting them.

- `loss` (percent): packets between the selected host and the other hosts are dropped at random, both ways,
  by iptables `statistic` rules on the selected host (`chaoslab.faults.netrules.loss_commands`). Works on any
  kernel with iptables; healed, checked and covered by the dead-man's switch exactly like a partition.
- `delay` and `jitter`: `tc netem` on the selected host's interface, for packets toward the other hosts
  (`chaoslab.faults.netrules.degrade_commands`), where the kernel has `sch_netem` and `sch_prio`. Where it has not
  ("qdisc kind is unknown"), the same packets are delayed in userspace instead: on each other host, an
  iptables NFQUEUE rule (`chaoslab.faults.netrules.nfqueue_commands`) hands what arrives from the selected host
  to a `chaoslab.faults.delayer` started in that host's namespace. The `degrade` event says which mechanism ran.

Through a kubeconfig target with helper pods (`spec.target.helperPod`; `interface` set for delays), one
privileged pod on the degraded host's node runs the loss rules and the netem qdisc, holds for the
duration and heals on deletion (undo `delete-pod`) or by itself afterwards. The NFQUEUE delayer needs
chaoslab's Python on the host, so there a kernel without netem fails the injection instead.

Crossing etcd's election timeout (1 s by default) with `delay` makes followers campaign; a few percent of
`loss` stretches heartbeats into sporadic elections; both show up as `etcdLeaderElections`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoslab.errors import InjectionError, SpecError, TargetError
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
    Netem,
    degrade_commands,
    delayer_command,
    heal_degrade,
    heal_partition,
    loss_commands,
    nfqueue_commands,
    wrap,
)
from chaoslab.faults.network import NetworkFault
from chaoslab.faults.partition import HEAL_MARGIN, TRAFFIC, select_etcd_host
from chaoslab.spec.durations import parse_duration
from chaoslab.targets import Target


@dataclass(frozen=True)
class DegradeParams(FaultParams):
    select: str = "leader"
    """The degraded host by etcd role: leader, follower, random or host:NAME."""
    loss: float = 0.0
    """Percent of packets dropped between it and the other hosts, each way (0 = none)."""
    delay: str | float = 0
    """Added one-way delay toward the other hosts (netem, else the NFQUEUE delayer), e.g. `1500ms`."""
    jitter: str | float = 0
    """Random variation of the delay (uniform, ±); needs a delay."""
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


QUEUE_BASE = 10000
"""Netfilter queue numbers of delayers: base + 1000 × fault index + a part of the tag, so faults of one run
never share a queue, and a delayer a crashed run left behind is unlikely to hold the next run's."""


class NetworkDegrade(NetworkFault[DegradeParams]):
    kind: ClassVar[str] = "network-degrade"
    params_type: ClassVar[type] = DegradeParams
    level: ClassVar[str] = "node"
    """Acts on hosts (processes, packet filters, kubelets), not through the API."""

    def resolve(self, target: Target, index: int) -> Injection:
        role, host, _ = select_etcd_host(target, self.params.select, self.rng, self.kind)
        peers = [h for h in target.hosts("etcd") if h != host]
        if not peers:
            raise InjectionError(f"network-degrade: {target.name} has no other etcd host to degrade links to")
        tag = f"d{index}-{uuid.uuid4().hex[:8]}"
        params: dict[str, Any] = {"tag": tag, "hosts": [host], "marker": f"chaoslab-{tag}", "flows": [],
                                  "peers": peers, "devices": {}}
        if self.params.netem is not None:
            device = target.endpoint(host).device
            if device is None:
                raise InjectionError(f"network-degrade: {target.name} does not say which interface {host} "
                                     f"uses; delay and jitter need it (spec.target.interface, or helperPod.interface "
                                     f"through helper pods)")
            # Both mechanisms are undone whichever runs (each undo step is harmless where nothing is):
            # netem on the host's device; NFQUEUE chains and delayers on the peers.
            params.update(devices={host: device}, hosts=[host, *peers], delayers=peers,
                          queue=QUEUE_BASE + index * 1000 + int(tag[-8:], 16) % 1000)
        runner = target.helper_pods()
        if runner is not None:
            # One pod, on the degraded host: loss rules and netem both act there (no delayer on the peers).
            extra = {"tag": tag, "peers": peers, "device": params["devices"].get(host)}
            undo_pods = netpods.pod_undo(target, runner, "degrade", index, [host], extra)
            return Injection(self.kind, index, "etcd", role, (f"etcd@{host}",), undo_pods)
        undo = Undo("heal-network", params)
        return Injection(self.kind, index, "etcd", role, (f"etcd@{host}",), (undo,))

    def host_commands(self, target: Target, injection: Injection) -> netpods.HostCommands:
        """Through a helper pod: the degraded host's loss rules and netem qdisc, and their heal."""
        params = injection.undo[0].params
        host, device = params["host"], params.get("device")
        if self.params.netem is not None and not isinstance(device, str):
            raise InjectionError(f"network-degrade: no interface for {host}; set spec.target.helperPod.interface")
        apply = [*self._loss(target, params["tag"], host, params["peers"]),
                 *self._netem(target, device, params["peers"])]
        heal = [*(heal_partition(params["tag"]) if self.params.loss else ()),
                *(heal_degrade(device) if self.params.netem is not None and device else ())]
        return lambda _host: (apply, heal)

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        p, params = self.params, injection.undo[0].params
        if injection.through_pods:
            self.inject_by_pods(target, injection, record)
            if p.netem is not None:
                record("degrade", fault=self.kind, index=injection.index, host=params["host"], mechanism="netem",
                       delay_ms=p.netem.delay_ms, jitter_ms=p.netem.jitter_ms, on=[params["host"]],
                       via=f"pod {params['namespace']}/{params['name']}")
            return
        host = params["hosts"][0]
        # The switch cannot match a delayer's command line safely (see `dead_mans_switch`), so delayers end
        # by themselves at the switch's deadline instead; with the rules gone they would idle till then.
        until = int(time.time()) + self.deadline()
        arm_switch(target, self.heal(params), self.deadline(), params["marker"])
        try:
            target.run_commands(wrap(self._loss(target, params["tag"], host, params["peers"]),
                                     target.host_wrap(host)))
            if p.netem is not None:
                mechanism = self._delay(target, params, p.netem, until)
                record("degrade", fault=self.kind, index=injection.index, host=host, mechanism=mechanism,
                       delay_ms=p.netem.delay_ms, jitter_ms=p.netem.jitter_ms,
                       on=[host] if mechanism == "netem" else list(params["peers"]))
        except Exception as exc:
            heal_network(target, params)
            raise InjectionError(f"network-degrade: could not degrade {host} ({exc}); healed again") from exc

    def rules(self, target: Target, params: Mapping[str, Any]) -> dict[str, list[Command]]:
        host = params["hosts"][0]
        return {host: [*self._loss(target, params["tag"], host, params["peers"]),
                       *self._netem(target, params["devices"].get(host), params["peers"])]}

    def heal(self, params: Mapping[str, Any]) -> dict[str, list[Command]]:
        """Every host's chain, and the qdisc of every device."""
        heal: dict[str, list[Command]] = {h: list(heal_partition(params["tag"])) for h in params["hosts"]}
        for h, dev in params["devices"].items():
            heal[h] += heal_degrade(dev)
        return heal

    def notes(self, params: Mapping[str, Any]) -> list[str]:
        if self.params.netem is None:
            return []
        return [(f"without netem in the kernel: a chaoslab.faults.delayer on NFQUEUE {params['queue']} on each of "
                 f"{', '.join(params['peers'])}, holding packets from {params['hosts'][0]}")]

    def _loss(self, target: Target, tag: str, host: str, peers: Sequence[str]) -> list[Command]:
        """The loss rules on the degraded host (none without loss)."""
        if not self.params.loss:
            return []
        return list(loss_commands(tag, target.endpoint(host), [target.endpoint(h) for h in peers], self.params.loss,
                                  TRAFFIC[self.params.traffic]))

    def _netem(self, target: Target, device: str | None, peers: Sequence[str]) -> list[Command]:
        """The netem qdisc on the degraded host's device toward its peers (none without delay)."""
        if self.params.netem is None or device is None:
            return []
        return list(degrade_commands(device, self.params.netem, [target.endpoint(h) for h in peers]))

    def _delay(self, target: Target, params: Mapping[str, Any], netem: Netem, until: int) -> str:
        """Delay packets from the host to its peers: netem on the host where the kernel has it, else the
        NFQUEUE delayer on each peer. Returns the mechanism: `netem` or `nfqueue`."""
        host, tag = params["hosts"][0], params["tag"]
        how, me = target.host_wrap(host), target.endpoint(host)
        try:
            target.run_commands(wrap(self._netem(target, params["devices"][host], params["peers"]), how))
            return "netem"
        except TargetError as exc:
            if "qdisc kind is unknown" not in str(exc):
                raise
        target.run_commands(wrap(heal_degrade(params["devices"][host]), how))  # a half-built prio qdisc
        for peer in (target.endpoint(h) for h in params["peers"]):
            at = target.host_wrap(peer.host)
            # The delayer first: it returns once bound, so the rules never queue to nobody (they would
            # not drop anyway: --queue-bypass).
            target.run_commands(wrap([Command(delayer_command(target.python(peer.host), params["queue"], netem,
                                                              until, params["marker"]))], at))
            target.run_commands(wrap(nfqueue_commands(tag, peer, [me], params["queue"]), at))
        return "nfqueue"
