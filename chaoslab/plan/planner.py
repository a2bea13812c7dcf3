"""Experiment + target → Plan: the only input of the executor, and the one place where the guard rails are
checked, whoever starts the run (`chaoslab run`, a game-day step, the Chaos Toolkit control or action).

The plan holds the faults built once from the spec (the very objects the executor injects), each resolved
against the cluster as it is now (read-only: Nodes, Pods, Leases, etcd status) with what it will touch, the
exact commands per host and its undo, the probes, and every refusal: allow-list / `--yes`, production
names, target capabilities (managed control planes, no host or etcd access), abort conditions that could
never fire, blast radius and etcd quorum loss. `chaoslab run --dry-run` prints it and stops; every caller
hands the same object to `chaoslab.execute.execute`, which refuses a plan with a refusal before anything
changes.

Which member plays `leader` or `follower` is bound again at each injection (the leader moves between
runs); the executor checks that binding against the same blast radius (`guard.radius_problems`).

    >>> plan = make_plan(experiment, target, settings=load_settings(), yes=False)   # doctest: +SKIP
    >>> plan.refusals                                                            # doctest: +SKIP
    ['kubeconfig context "prod-eu" looks like production ...']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaoslab.clients.kubeapi import get_or_none
from chaoslab.errors import ChaoslabError, SpecError
from chaoslab.faults import build
from chaoslab.faults.base import Fault, Injection
from chaoslab.plan.guard import (
    Settings,
    abort_problems,
    allow_problems,
    capability_problems,
    fault_level,
    radius_problems,
)
from chaoslab.plan.probes import probes_for
from chaoslab.spec.model import Experiment
from chaoslab.spec.workload import ref
from chaoslab.targets import Target
from chaoslab.targets.helperpod import HelperPodSettings

NOTHING_CHANGED = "nothing was changed; `chaoslab run --dry-run` shows the whole plan"
WORKLOAD_METRICS = ("pdbViolations", "reschedulingTime", "workloadUnavailable")
"""SLO metrics judged on the pods of a workload: measured only when the workload runs."""


@dataclass
class FaultPlan:
    kind: str
    level: str
    where: str
    fault: Fault
    """The fault built from the spec: the object the executor injects."""
    injection: dict[str, Any] | None = None
    """The resolved injection (targets, role, undo as data); None when it could not be resolved."""
    actions: list[str] = field(default_factory=list)
    """What inject will do, one line each (commands as they will run)."""
    undo: list[str] = field(default_factory=list)
    helper_pods: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    deferred: str | None = None
    """Why the fault is bound only when the run starts: what it acts on comes with `spec.workload`."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "level": self.level, "where": self.where, "injection": self.injection,
                "actions": self.actions, "undo": self.undo, "helperPods": self.helper_pods, "error": self.error,
                **({"deferred": self.deferred} if self.deferred else {})}


@dataclass
class Plan:
    experiment: Experiment
    target: dict[str, object]
    """The target's description (`Target.describe`)."""
    faults: list[FaultPlan]
    probes: list[dict[str, Any]]
    refusals: list[str]
    workload: dict[str, Any] = field(default_factory=dict)
    """What must be running before anything is injected, when an SLO judges a workload: `namespaces`,
    `selector` and the `slos` that need it (empty: nothing)."""

    @property
    def name(self) -> str:
        return self.experiment.name

    def to_json(self) -> dict[str, Any]:
        deploy = self.experiment.workload
        return {"experiment": self.experiment.name, "target": self.target, "refusals": self.refusals,
                "probes": self.probes, "faults": [f.to_json() for f in self.faults],
                **({"workload": self.workload} if self.workload else {}),
                **({"deploy": {"create unless there": [ref(o).shown for o in deploy.objects],
                               "readyTimeout": deploy.ready_timeout,
                               "at the end": "keep" if deploy.keep else "delete what was created"}}
                   if deploy is not None else {})}

    def refuse(self) -> None:
        """`SpecError` (exit 2) with every refusal, when there is one: nothing may be changed."""
        if self.refusals:
            raise SpecError([*self.refusals, NOTHING_CHANGED])


def make_plan(experiment: Experiment, target: Target, probes: Sequence[Mapping[str, Any]] | None = None, *,
              settings: Settings, yes: bool, helper: HelperPodSettings | None = None) -> Plan:
    """The plan, with every refusal; never changes the cluster. `probes` default to the experiment's own
    (`probes_for`); `yes` is the user's consent for a target that is not the lab."""
    helper = helper or HelperPodSettings()
    probes = probes_for(experiment) if probes is None else probes
    refusals = [*allow_problems(target, settings, yes), *abort_problems(experiment),
                *capability_problems(experiment, target, probes)]
    plans, injections = [], []
    try:
        absent = missing_objects(target, experiment)
    except ChaoslabError as exc:
        absent = []
        refusals.append(f"{experiment.workload.where if experiment.workload else 'spec.workload'}: cannot look "
                        f"for the workload's objects: {exc}")
    for i, spec in enumerate(experiment.faults):
        fault = build(spec.kind, spec.params, spec.where, experiment.duration)
        fp = FaultPlan(spec.kind, fault_level(spec.kind), spec.where or f"spec.faults[{i}]", fault)
        plans.append(fp)
        try:
            if fp.level == "node" and target.node_level_refusal(spec.kind):
                fp.error = "refused: this target cannot reach hosts"
                fp.helper_pods = fault.refused_helper_pods(target, i, helper)
                continue
            inj = fault.resolve(target, i)
            injections.append(inj)
            fp.injection = inj.to_json()
            fp.actions, fp.undo = fault.describe(target, inj)
            if inj.through_pods:
                fp.helper_pods = fault.helper_pods(target, inj)
        except ChaoslabError as exc:
            if absent and not fp.error:
                # What the fault acts on may come with the workload: it is bound (and checked against the
                # blast radius) when the run starts, after the workload is ready, like every fault.
                fp.deferred = (f"bound when the run starts, once spec.workload has created "
                               f"{', '.join(absent)}; now: {exc}")
                continue
            fp.error = (fp.error + "; " if fp.error else "") + str(exc)
            if not fp.error.startswith("refused"):
                refusals.append(f"{fp.where}: {exc}")
    refusals += radius_problems(experiment, injections, etcd_members(target, injections), target)
    return Plan(experiment, target.describe(), plans, [dict(p) for p in probes], refusals,
                needed_workload(experiment, probes))


def missing_objects(target: Target, experiment: Experiment) -> list[str]:
    """The objects of `spec.workload` that are not on the cluster yet (read only)."""
    if experiment.workload is None:
        return []
    api = target.api()
    return [r.shown for r in map(ref, experiment.workload.objects) if get_or_none(api, r.path) is None]


def needed_workload(experiment: Experiment, probes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The workload the experiment's workload SLOs judge: the workloads probe's namespaces and selector."""
    slos = sorted({s.metric for s in experiment.slos if s.metric in WORKLOAD_METRICS})
    if not slos:
        return {}
    probe = next((p for p in probes if p["kind"] == "workloads"), {})
    return {"namespaces": list(probe.get("namespaces") or ["default"]), "selector": probe.get("selector"),
            "slos": slos}


def etcd_members(target: Target, injections: Sequence[Injection]) -> int:
    """How many etcd members the quorum rule counts, when any injection touches etcd (else 0: no rule)."""
    return len(target.hosts("etcd")) if any(i.component == "etcd" for i in injections) else 0
