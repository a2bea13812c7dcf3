"""Experiment + target → Plan: every fault resolved against the cluster as it is now (read-only), with what
it will touch, the exact commands per host, its undo, and every guard rail's refusal. `chaoslab run
--dry-run` prints it and stops; a real run makes the same plan first and refuses to start when it holds a
refusal. Making a plan changes nothing: fault `resolve` only reads (Nodes, Pods, Leases, etcd status).

    >>> plan = make_plan(experiment, target, probes, settings=load_settings(), yes=False)   # doctest: +SKIP
    >>> plan.refusals                                                                    # doctest: +SKIP
    ['kubeconfig context "prod-eu" looks like production ...']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaoslab.errors import ChaoslabError
from chaoslab.faults import build
from chaoslab.faults.base import Fault, Injection
from chaoslab.faults.kill_process import KillProcess
from chaoslab.faults.network import NetworkFault
from chaoslab.plan.guard import (
    Settings,
    abort_problems,
    allow_problems,
    capability_problems,
    fault_level,
    radius_problems,
)
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target, describe
from chaoslab.targets.helperpod import (
    HelperPodSettings,
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


def _describe(fault: Fault, target: Target, inj: Injection) -> tuple[list[str], list[str]]:
    """The fault's own `describe`; for a plugin fault without one, its targets and undo as data."""
    describe = getattr(fault, "describe", None)
    if callable(describe):
        lines: tuple[list[str], list[str]] = describe(target, inj)
        return lines
    return [f"{inj.fault} on {t}" for t in inj.targets], [f"{u.action} {dict(u.params)}" for u in inj.undo]


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
            fp.actions, fp.undo = _describe(fault, target, inj)
            if isinstance(fault, (KillProcess, NetworkFault)) and inj.through_pods:
                fp.helper_pods = fault.helper_pods(target, inj)
        except ChaoslabError as exc:
            fp.error = (fp.error + "; " if fp.error else "") + str(exc)
            if not fp.error.startswith("refused"):
                refusals.append(f"{fp.where}: {exc}")
    members = len(target.hosts("etcd")) if injections and any(i.component == "etcd" for i in injections) else 0
    refusals += radius_problems(experiment, injections, members, target)
    probe_list = [dict(p) for p in probes]
    return Plan(experiment.name, describe(target), plans, probe_list, refusals)
