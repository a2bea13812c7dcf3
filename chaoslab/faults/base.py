"""What every fault is: it resolves its targets against the cluster as it is now, returns its undo as
data (written to the run directory before injection, so `chaoslab recover` can replay it after a crash),
and injects. Undo steps are a small closed vocabulary applied by `apply_undo`, never generated code."""

from __future__ import annotations

import random
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from chaoslab.clients.kubeapi import ApiError, get_or_none
from chaoslab.errors import RevertError, TargetError
from chaoslab.faults.netrules import (
    Command,
    cancel_dead_mans_switch,
    dead_mans_switch,
    delayer_pattern,
    heal_degrade,
    heal_partition,
    leftovers,
    stop_delayer,
    wrap,
)
from chaoslab.targets import Target
from chaoslab.targets.helperpod import HelperPodSettings

Record = Callable[..., object]
"""The timeline's `event(kind, **detail)`: the runner hands it to faults whose inject takes `record`."""


def ignore_events(kind: str, **detail: Any) -> None:
    """Where a fault's events go when nobody records them."""


@dataclass(frozen=True)
class Undo:
    """One revert step. `signal`: send `signal` to `component` on `host` (e.g. CONT after STOP);
    `release`: let the supervisor restart `component` on `host` again; `heal-network`: remove the chain
    `tag` on `hosts` and the qdisc of `devices` (host → interface, if any), stop the delayers on
    `delayers` (hosts), and disarm the dead-man's switch `marker`; `uncordon`: make the Nodes `nodes`
    schedulable again; `resume-heartbeat`: restore the heartbeat of the worker nodes `nodes` (after
    `node-failure`); `delete-pod`: delete the helper pod `namespace`/`name` (its own script undoes the
    fault on TERM) and wait until it is gone; `delete-webhook`: delete the webhook configuration `name`, stop
    its server and switch (`marker`), unlabel `namespaces` (after `webhook-outage`); `restore-certificate`:
    move `backup` back to `cert` and restart its `users` (after `cert-expiry`); `stop-overload`: stop the
    load generator `marker`, delete its `namespace` and ClusterRoleBinding `binding` (after `api-overload`);
    `release-memory`: move what is left in the memory `cgroup` on `host` back to its parent, remove it and
    disarm the switch `marker` (after `memory-limit`);
    `stop-tracer`: end the `disk-latency` tracer `marker` on
    `host` and check that etcd's process `pid` names no tracer any more; `nospace-runbook`: end the
    `etcd-nospace` switch `marker` and run the NOSPACE runbook over chaoslab's keys under `prefix` (lease
    `lease`); `delete-keys`: delete chaoslab's keys under `prefix` and revoke their `lease`; `delete-objects`: delete the
    Kubernetes objects at `paths` (the ones `spec.workload` created), last first, and wait until they are
    gone."""

    action: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Undo:
        return cls(data["action"], data.get("params", {}))


@dataclass(frozen=True)
class Injection:
    """A fault resolved against the cluster: exactly what will be hit, and how to undo it."""

    fault: str
    index: int
    component: str
    role: str
    targets: tuple[str, ...]
    """`component@host` of every process hit."""
    undo: tuple[Undo, ...]

    @property
    def through_pods(self) -> bool:
        """Carried out by helper pods (its undo deletes them), not by commands chaoslab runs itself."""
        return bool(self.undo) and self.undo[0].action == "delete-pod"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["undo"] = [u.to_json() for u in self.undo]
        return out


class FaultParams:
    """What every fault's params dataclass is: fields as written in the experiment (attribute docstrings say
    unit and default), plus the checks across fields that the JSON schema cannot make."""

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for each field that contradicts another; none by default."""
        return []


class Fault(Protocol):
    """The contract `chaoslab.faults.register` checks once, so no caller ever probes a fault."""

    kind: ClassVar[str]
    """The YAML `kind`, e.g. `kill-process`."""
    params_type: ClassVar[type[FaultParams]]
    level: ClassVar[str]
    """`api` (through the Kubernetes API only) or `node` (acts on control-plane hosts)."""

    def resolve(self, target: Target, index: int) -> Injection:
        """Bind the fault to the cluster as it is now (which member leads, which node runs what): read-only."""

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        """Do it. `record` is the timeline's `event`, for what the fault does as it goes."""

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        """What `inject` and the undo will do (commands exactly as they will run), one line each; read-only,
        for the plan that `chaoslab run --dry-run` prints. `describe_from_data` serves faults with nothing
        more to say than their targets and undo."""

    def helper_pods(self, target: Target, injection: Injection) -> list[dict[str, Any]]:
        """The pods `inject` would create through the API (generated, not created)."""

    def refused_helper_pods(self, target: Target, index: int, settings: HelperPodSettings) -> list[dict[str, Any]]:
        """The helper pods it would run where the target refuses it for want of them."""


P = TypeVar("P")
"""A fault's params dataclass."""


class FaultBase(Generic[P]):
    """What a fault need not say itself: how it is made from its params, its plan lines from its targets
    and undo data, and no helper pods. Built-in faults derive from it (`FaultBase[TheirParams]`); so may
    plugins."""

    def __init__(self, params: P, duration: float = 0.0, rng: random.Random | None = None) -> None:
        self.params = params
        self.duration = duration
        """Seconds the fault holds once injected (the experiment's `duration`)."""
        self.rng = rng or random.Random()
        """What a fault that picks among candidates (hosts, nodes, pods) draws from; tests pass a seeded one."""

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        return describe_from_data(injection)

    def helper_pods(self, target: Target, injection: Injection) -> list[dict[str, Any]]:
        """The pods `inject` would create through the API (generated, not created): none."""
        return []

    def refused_helper_pods(self, target: Target, index: int, settings: HelperPodSettings) -> list[dict[str, Any]]:
        """For a fault the target refuses: the helper pods it would run if the target allowed them, so the
        plan shows what enabling helper pods means; none."""
        return []


class _Deadman(Protocol):
    @property
    def deadman(self) -> int: ...


D = TypeVar("D", bound=_Deadman)
"""The params of a fault with a dead-man's switch: they say its margin (`deadman`, seconds)."""


class SwitchedFault(FaultBase[D]):
    """A fault whose undo a dead-man's switch runs if chaoslab is gone: `deadman` seconds after the fault
    should have ended."""

    def deadline(self) -> int:
        """Seconds after injection at which the dead-man's switch undoes the fault."""
        return int(self.duration) + self.params.deadman


def describe_from_data(injection: Injection) -> tuple[list[str], list[str]]:
    """A fault's plan lines from its targets and undo as data."""
    return ([f"{injection.fault} on {t}" for t in injection.targets],
            [f"{u.action} {dict(u.params)}" for u in injection.undo])


#: Seconds `delete-objects` waits for deleted objects to be gone (a namespace deletes its pods first).
OBJECTS_GONE_WITHIN = 180.0


def delete_objects(target: Target, paths: Sequence[str]) -> None:
    """Delete the objects at `paths`, last first (a namespace's contents before it), and wait until every
    one is gone: the next run may create them again."""
    api = target.api()
    for path in reversed(paths):
        api.delete(path)
    deadline = time.monotonic() + OBJECTS_GONE_WITHIN
    left = list(paths)
    while left and time.monotonic() < deadline:
        left = [p for p in left if get_or_none(api, p) is not None]
        if left:
            time.sleep(0.5)
    if left:
        raise RevertError(f"still there {OBJECTS_GONE_WITHIN:.0f} s after their deletion: {', '.join(left)}")


def apply_undo(target: Target, undo: Undo, record: Record = ignore_events) -> None:
    """Carry out one undo step; `RevertError` saying what is still broken when it cannot. `record`: the
    timeline's `event`, for undo steps that report as they go (the NOSPACE runbook's timed steps)."""
    p = undo.params
    try:
        if undo.action == "signal":
            if target.pid(p["component"], p["host"]) is not None:
                target.signal(p["component"], p["host"], p["signal"])
        elif undo.action == "release":
            target.hold(p["component"], p["host"], held=False)
        elif undo.action == "heal-network":
            heal_network(target, p)
        elif undo.action == "uncordon":
            for node in p["nodes"]:
                try:
                    target.api().patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": None}})
                except ApiError as exc:
                    if exc.status != 404:  # a node deleted meanwhile needs nothing
                        raise
        elif undo.action == "delete-pod":
            delete_pod(target, p["namespace"], p["name"])
        elif undo.action == "stop-tracer":
            from chaoslab.faults.sync_tracer import stop_tracer  # not at import: `python -m` runs that module

            try:
                stop_tracer(target, p)
            except RuntimeError as exc:
                raise RevertError(str(exc)) from exc
        elif undo.action == "nospace-runbook":
            from chaoslab.faults.etcd_nospace import heal as nospace_runbook  # they import this module

            nospace_runbook(target, p, record)
        elif undo.action == "delete-keys":
            from chaoslab.faults.etcd_defrag import delete_keys

            delete_keys(target, p)
        elif undo.action == "resume-heartbeat":
            for node in p["nodes"]:
                target.stop_heartbeat(node, stopped=False)
        elif undo.action == "delete-objects":
            delete_objects(target, p["paths"])
        elif undo.action == "delete-webhook":
            from chaoslab.faults.webhook_outage import remove_webhook  # it imports this module

            remove_webhook(target, p)
        elif undo.action == "restore-certificate":
            from chaoslab.faults.cert_expiry import restore_certificate  # it imports this module

            restore_certificate(target, p)
        elif undo.action == "release-memory":
            from chaoslab.faults.memory_limit import release_memory  # it imports this module

            release_memory(target, p, record)
        elif undo.action == "stop-overload":
            from chaoslab.faults.api_overload import stop_overload  # it imports this module

            stop_overload(target, p)
        else:
            raise RevertError(f"unknown undo action {undo.action!r}")
    except (TargetError, OSError) as exc:
        raise RevertError(f"could not undo {undo.action} {dict(p)}: {exc}; the cluster may still be "
                          f"degraded; retry with `chaoslab recover`") from exc


DELAYER_EXIT = 5.0
"""Seconds a delayer gets to let its held packets go and exit after SIGTERM."""


def delete_pod(target: Target, namespace: str, name: str, timeout: float = 45.0, poll: float = 1.0) -> None:
    """Delete a helper pod and wait until the API no longer has it: its script has then run its undo (the
    kubelet ends it with TERM, SIGKILL only after terminationGracePeriodSeconds, 30)."""
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    api = target.api()
    api.delete(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.request("GET", path).status_code == 404:
            return
        time.sleep(poll)
    raise TargetError(f"helper pod {namespace}/{name} still exists {timeout:g} s after its deletion; check "
                      f"`kubectl -n {namespace} describe pod {name}` (is the node's kubelet up?)")


def heal_network(target: Target, params: Mapping[str, Any]) -> None:
    """Undo of `partition` and `network-degrade`: remove the chain on every host and the netem qdisc of
    each device, stop the delayers (after the rules, so nothing new is queued while they let go of what
    they hold), disarm the switch, and check that nothing is left."""
    tag, hosts, devices = params["tag"], params["hosts"], params.get("devices", {})
    marker, delayers = params["marker"], params.get("delayers", [])
    for host in hosts:
        target.run_commands(wrap(heal_partition(tag), target.host_wrap(host)))
    for host, dev in devices.items():
        target.run_commands(wrap(heal_degrade(dev), target.host_wrap(host)))
    for host in delayers:
        target.run_commands(wrap([stop_delayer(marker)], target.host_wrap(host)))
    disarm_switch(target, sorted({*hosts, *devices, *delayers}), marker)
    running = _delayers(target, delayers, marker)
    deadline = time.monotonic() + DELAYER_EXIT
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
        running = _delayers(target, delayers, marker)
    left: dict[str, list[str]] = {}
    for h in hosts:
        listing = target.run_commands(wrap([Command(("iptables", "-w", "-S"))], target.host_wrap(h)))[0]
        left[h] = leftovers(tag, listing)
    for h, dev in devices.items():
        qdiscs = target.run_commands(wrap([Command(("tc", "qdisc", "show", "dev", dev))], target.host_wrap(h)))[0]
        left[h] = left.get(h, []) + [line for line in qdiscs.splitlines() if " netem " in line]
    for h, pids in running.items():
        left[h] = left.get(h, []) + [f"chaoslab.faults.delayer pid {pid}" for pid in pids]
    if any(left.values()):
        raise RevertError(f"network fault {tag}: left after heal: {left}")


def switch_commands(target: Target, heal: Mapping[str, Sequence[Command]], deadline_s: int,
                    marker: str, machine: bool = False) -> list[Command]:
    """The command(s) that arm the dead-man's switch running `heal` (host → its heal commands, unwrapped)
    after `deadline_s`. Where it runs is the target's choice: on chaoslab's machine, reaching each host with
    its wrap (the lab), or on every host itself (`remote_switch`, e.g. over ssh), so a host cut off from
    chaoslab still heals. `machine`: the heal runs on the host's machine (`Target.machine_wrap`), not in
    its network namespace."""
    how = target.machine_wrap if machine else target.host_wrap
    if target.remote_switch:
        return [c for host, commands in heal.items()
                for c in wrap([Command(dead_mans_switch(commands, deadline_s, marker))], how(host))]
    wrapped = [c for host, commands in heal.items() for c in wrap(commands, how(host))]
    return [Command(dead_mans_switch(wrapped, deadline_s, marker))]


def network_lines(target: Target, heal: Mapping[str, Sequence[Command]], deadline_s: int, marker: str,
                  rules: Mapping[str, Sequence[Command]]) -> list[str]:
    """A network fault's inject as `describe` lines: the switch it arms, then each host's rules, wrapped as
    they will run."""
    return ["arm: " + shlex.join(c.argv) for c in switch_commands(target, heal, deadline_s, marker)] + [
        f"{host}: {line}" for host, commands in rules.items()
        for c in wrap(commands, target.host_wrap(host)) for line in c.shown()]


def heal_lines(params: Mapping[str, Any]) -> list[str]:
    """`heal_network` of these undo params, a line per step."""
    return ([f"{h}: remove chain {params['tag']}" for h in params["hosts"]]
            + [f"{h}: remove the netem qdisc of {d}" for h, d in params.get("devices", {}).items()]
            + [f"{h}: stop the delayer" for h in params.get("delayers", [])]
            + [f"disarm the dead-man's switch {params['marker']}"])


def arm_switch(target: Target, heal: Mapping[str, Sequence[Command]], deadline_s: int, marker: str,
               machine: bool = False) -> None:
    """Arm the dead-man's switch of `switch_commands`."""
    target.run_commands(switch_commands(target, heal, deadline_s, marker, machine))


def disarm_switch(target: Target, hosts: Sequence[str], marker: str) -> None:
    """End the switch `arm_switch` armed, where it armed it; nothing to end is fine."""
    cancel = cancel_dead_mans_switch(marker)
    if target.remote_switch:
        for host in hosts:
            target.run_commands(wrap([cancel], target.host_wrap(host)))
    else:
        target.run_commands([cancel])


def _delayers(target: Target, hosts: list[str], marker: str) -> dict[str, list[str]]:
    """Host → pids of the fault's delayers still running there."""
    check = [Command(("pgrep", "-f", delayer_pattern(marker)), may_fail=True)]
    found = {h: target.run_commands(wrap(check, target.host_wrap(h)))[0].split() for h in hosts}
    return {h: pids for h, pids in found.items() if pids}
