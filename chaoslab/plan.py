"""Experiment + target → Plan: every fault resolved against the cluster as it is now (read-only), with what
it will touch, the exact commands per host, its undo, and every guard rail's refusal. `chaoslab run
--dry-run` prints it and stops; a real run makes the same plan first and refuses to start when it holds a
refusal. Making a plan changes nothing: fault `resolve` only reads (Nodes, Pods, Leases, etcd status).

    >>> plan = make_plan(experiment, target, probes, settings=load_settings(), yes=False)   # doctest: +SKIP
    >>> plan.refusals                                                                    # doctest: +SKIP
    ['kubeconfig context "prod-eu" looks like production ...']
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaoslab.drain import classify
from chaoslab.errors import ChaoslabError
from chaoslab.faults import build, netpods
from chaoslab.faults.base import Injection, switch_commands
from chaoslab.faults.degrade import NetworkDegrade
from chaoslab.faults.drain_node import DrainNode, daemonsets, node_pods
from chaoslab.faults.evict_pods import EvictPods
from chaoslab.faults.kill_process import KillProcess
from chaoslab.faults.partition import TRAFFIC, PartitionFault, recorded_partition
from chaoslab.guard import (
    Settings,
    abort_problems,
    allow_problems,
    capability_problems,
    fault_level,
    radius_problems,
)
from chaoslab.netrules import (
    degrade_commands,
    heal_degrade,
    heal_partition,
    loss_commands,
    partition_commands,
    wrap,
)
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target, describe
from chaoslab.targets.helperpod import (
    HelperPodSettings,
    helper_runner,
    kill_script,
    node_for_host,
    pod_manifest,
)


@dataclass
class FaultPlan:
    kind: str
    level: str
    where: str
    injection: dict[str, Any] | None = None
    """The resolved injection (targets, role, undo as data); None when it could not be resolved."""
    actions: list[str] = field(default_factory=list)
    """What inject will do, one line each (commands as they will run)."""
    undo: list[str] = field(default_factory=list)
    helper_pods: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class Plan:
    experiment: str
    target: dict[str, object]
    faults: list[FaultPlan]
    probes: list[dict[str, Any]]
    refusals: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "target": self.target, "refusals": self.refusals,
                "probes": self.probes,
                "faults": [{"kind": f.kind, "level": f.level, "where": f.where, "injection": f.injection,
                            "actions": f.actions, "undo": f.undo, "helperPods": f.helper_pods, "error": f.error}
                           for f in self.faults]}


def _sh(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _actions(fault: Any, target: Target, inj: Injection, duration: float) -> tuple[list[str], list[str]]:
    """(inject lines, undo lines) for a resolved injection, as the fault will carry them out."""
    if isinstance(fault, KillProcess) and inj.undo and inj.undo[0].action == "delete-pod":
        pods = [u.params for u in inj.undo]
        return ([f"create privileged pod {p['namespace']}/{p['name']} on node {p['node']}: SIG"
                 f"{fault.params.signal} to {t}, pid before and after on its log" for p, t in zip(pods, inj.targets)],
                [f"delete pod {p['namespace']}/{p['name']}" + (" (its script sends SIGCONT on TERM)"
                                                               if fault.params.signal == "STOP" else "")
                 for p in pods])
    if isinstance(fault, (PartitionFault, NetworkDegrade)) and inj.undo and inj.undo[0].action == "delete-pod":
        commands_of = fault.host_commands(target, inj)
        lines, undone = [], []
        for u in inj.undo:
            pod, host = f"{u.params['namespace']}/{u.params['name']}", u.params["host"]
            apply, cure = commands_of(host)
            lines.append(f"create privileged pod {pod} on node {u.params['node']} ({host}), holding "
                         f"{duration:g} s then healing:")
            lines += [f"  {host}: {_sh(c.argv)}" for c in apply]
            undone.append(f"delete pod {pod} (on TERM its script runs: {'; '.join(_sh(c.argv) for c in cure)})")
        return lines, undone
    if isinstance(fault, KillProcess):
        return ([f"send SIG{fault.params.signal} to {t}" for t in inj.targets],
                [f"send SIGCONT to {t}" for t in inj.targets] if fault.params.signal == "STOP" else [])
    if isinstance(fault, (PartitionFault, NetworkDegrade)):
        p = inj.undo[0].params
        tag, out = p["tag"], []
        heal = {h: list(heal_partition(tag)) for h in p["hosts"]}
        for h, dev in p.get("devices", {}).items():
            heal.setdefault(h, []).extend(heal_degrade(dev))
        out += ["arm: " + _sh(c.argv) for c in
                switch_commands(target, heal, int(duration) + fault.params.deadman, p["marker"])]
        if isinstance(fault, PartitionFault):
            for host, commands in partition_commands(tag, recorded_partition(target, p["flows"])).items():
                out += [f"{host}: {_sh(c.argv)}" for c in wrap(commands, target.host_wrap(host))]
        else:
            host = p["hosts"][0]  # the degraded host; the others carry the NFQUEUE fallback
            me, peers = target.endpoint(host), [target.endpoint(h) for h in p["peers"]]
            if fault.params.loss:
                cmds = loss_commands(tag, me, peers, fault.params.loss, TRAFFIC[fault.params.traffic])
                out += [f"{host}: {_sh(c.argv)}" for c in wrap(cmds, target.host_wrap(host))]
            if fault.params.netem is not None:
                cmds = degrade_commands(p["devices"][host], fault.params.netem, peers)
                out += [f"{host}: {_sh(c.argv)}" for c in wrap(cmds, target.host_wrap(host))]
                out.append(f"without netem in the kernel: a chaoslab.delayer on NFQUEUE {p['queue']} on each of "
                           f"{', '.join(p['peers'])}, holding packets from {host}")
        undo = [f"{h}: remove chain {tag}" for h in p["hosts"]] + [
            f"{h}: remove the netem qdisc of {d}" for h, d in p.get("devices", {}).items()] + [
            f"{h}: stop the delayer" for h in p.get("delayers", [])] + [
            f"disarm the dead-man's switch {p['marker']}"]
        return out, undo
    if isinstance(fault, DrainNode):
        api, sets, out = target.api(), daemonsets(target.api()), []
        for node in (t.split("@", 1)[1] for t in inj.targets):
            ds = classify(node_pods(api, node), fault.params.options, sets, time.time())
            out.append(f"cordon node {node}")
            out += [f"  {d.action} pod {d.namespace}/{d.name}" + (f" ({d.reason})" if d.reason else "") for d in ds]
        nodes = inj.undo[0].params["nodes"] if inj.undo else []
        return out, [f"uncordon node {n}" for n in nodes]
    if isinstance(fault, EvictPods):
        verb = "delete" if fault.params.bypassPdb else "evict"
        return [f"{verb} {t}" for t in inj.targets], ["none: the pods' controllers recreate them"]
    return ([f"{inj.fault} on {t}" for t in inj.targets],
            [f"{u.action} {dict(u.params)}" for u in inj.undo])


def _helper_pods(fault: KillProcess, target: Target, index: int, duration: float,
                 settings: HelperPodSettings) -> list[dict[str, Any]]:
    """The helper pods a kill-process would run through the API (generated, not created)."""
    _, hosts = fault.choose(target)
    nodes = target.api().get("/api/v1/nodes")["items"]
    program = kill_script(fault.params.component, fault.params.signal, duration)
    return [pod_manifest(f"chaoslab-kill-{index}-{i}", node_for_host(h, nodes), program, duration, settings)
            for i, h in enumerate(hosts)]


def make_plan(experiment: Experiment, target: Target, probes: Sequence[Mapping[str, Any]], *, settings: Settings,
              yes: bool, helper: HelperPodSettings | None = None) -> Plan:
    """The plan, with every refusal; never changes the cluster."""
    helper = helper or HelperPodSettings()
    refusals = [*allow_problems(target, settings, yes), *abort_problems(experiment),
                *capability_problems(experiment, target, probes)]
    refuse_node = getattr(target, "node_level_refusal", None)
    plans, injections = [], []
    for i, spec in enumerate(experiment.faults):
        fp = FaultPlan(spec.kind, fault_level(spec.kind), spec.where or f"spec.faults[{i}]")
        plans.append(fp)
        fault = build(spec.kind, spec.params, spec.where, experiment.duration)
        try:
            if callable(refuse_node) and fp.level == "node" and refuse_node(spec.kind):
                fp.error = "refused: this target cannot reach hosts"
                if isinstance(fault, KillProcess) and not getattr(target, "provider", lambda: None)():
                    fp.helper_pods = _helper_pods(fault, target, i, experiment.duration, helper)
                continue
            inj = fault.resolve(target, i)
            injections.append(inj)
            fp.injection = inj.to_json()
            fp.actions, fp.undo = _actions(fault, target, inj, experiment.duration)
            if isinstance(fault, KillProcess) and inj.undo and inj.undo[0].action == "delete-pod":
                fp.helper_pods = [fault.helper_manifest(target, u.params) for u in inj.undo]
            elif isinstance(fault, (PartitionFault, NetworkDegrade)) and inj.undo and \
                    inj.undo[0].action == "delete-pod":
                runner = helper_runner(target)
                assert runner is not None
                fp.helper_pods = netpods.manifests(target, inj.undo, fault.host_commands(target, inj),
                                                   experiment.duration, runner.settings)
        except ChaoslabError as exc:
            fp.error = (fp.error + "; " if fp.error else "") + str(exc)
            if not fp.error.startswith("refused"):
                refusals.append(f"{fp.where}: {exc}")
    members = len(target.hosts("etcd")) if injections and any(i.component == "etcd" for i in injections) else 0
    refusals += radius_problems(experiment, injections, members)
    probe_list = [dict(p) for p in probes]
    return Plan(experiment.name, describe(target), plans, probe_list, refusals)
