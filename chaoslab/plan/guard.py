"""Guard rails: what must be true before chaoslab touches a cluster. Pure checks over the experiment, the
target's answers and the resolved faults; the session and the runner call them, the CLI shows what they
refuse.

- Allow: a target that is not the lab needs an explicit allow — its context or server host in the config
  file's allow-list (`allow: {contexts: [...], hosts: [...]}`), or `--yes`. A context or host matching
  `productionPattern` (default `prod|prd`) needs both.
- Capabilities: faults and probes the target cannot carry out are refused with the target's reason
  (node-level faults through a kubeconfig, etcd probes without etcd access, control-plane faults on a
  managed control plane).
- Blast radius: `spec.blastRadius` limits nodes, pods and etcd members over all faults; faults that leave
  fewer than a majority of etcd members up and connected need `allowQuorumLoss: true`; a webhook-outage
  matching the control plane's own writes needs `allowControlPlaneWebhooks: true`.

The config file is `$CHAOSLAB_CONFIG`, else `$XDG_CONFIG_HOME/chaoslab/config.yaml` (~/.config/...):

    allow:
      contexts: [staging, kind-*]     # fnmatch patterns
      hosts: [10.0.0.10]
    productionPattern: "prod|prd"     # a regular expression, searched in context and host names
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaoslab.errors import SpecError
from chaoslab.faults import fault_class
from chaoslab.faults.base import Injection
from chaoslab.faults.webhook_outage import control_plane_matches
from chaoslab.judge.conditions import LIVE_METRICS
from chaoslab.spec.model import Experiment
from chaoslab.targets import Target

DEFAULT_PRODUCTION = "prod|prd"
ETCD_PROBES = ("etcd", "writes", "etcd-metrics")
ETCD_CONDITIONS = ("etcd-quorum", "etcd-leader")


@dataclass(frozen=True)
class Settings:
    """The user's chaoslab config file (see the module docstring)."""

    contexts: tuple[str, ...] = ()
    """Allowed kubeconfig contexts (fnmatch patterns)."""
    hosts: tuple[str, ...] = ()
    """Allowed hosts: API server hosts, SSH hosts (fnmatch patterns)."""
    production_pattern: str = DEFAULT_PRODUCTION
    """Regular expression: matching names are production and need the allow-list and `--yes`."""
    source: Path | None = None
    """The file these came from (None: no file)."""


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("CHAOSLAB_CONFIG"):
        return Path(env["CHAOSLAB_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "chaoslab" / "config.yaml"


def load_settings(path: Path | None = None) -> Settings:
    """The settings in `path` (default `config_path()`); empty settings when there is no file."""
    path = path or config_path()
    if not path.exists():
        return Settings()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError([f"{path}: cannot be read ({exc})"]) from exc
    problems = []
    if not isinstance(data, dict):
        raise SpecError([f"{path}: must be a mapping with `allow` and `productionPattern`"])
    unknown = sorted(set(data) - {"allow", "productionPattern"})
    if unknown:
        problems.append(f"{path}: unknown key(s) {', '.join(unknown)}; known: allow, productionPattern")
    allow = data.get("allow") or {}
    if not isinstance(allow, dict) or set(allow) - {"contexts", "hosts"}:
        problems.append(f"{path}: allow: must be a mapping with `contexts` and/or `hosts` (lists of names)")
        allow = {}
    pattern = str(data.get("productionPattern") or DEFAULT_PRODUCTION)
    try:
        re.compile(pattern)
    except re.error as exc:
        problems.append(f"{path}: productionPattern {pattern!r} is not a regular expression ({exc})")
    if problems:
        raise SpecError(problems)
    return Settings(tuple(map(str, allow.get("contexts") or ())), tuple(map(str, allow.get("hosts") or ())),
                    pattern, path)


def _listed(names: Iterable[str], patterns: Iterable[str]) -> list[str]:
    return [n for n in names for p in patterns if fnmatch.fnmatchcase(n, p)]


def allow_problems(target: Target, settings: Settings, yes: bool) -> list[str]:
    """Why chaoslab may not act on `target` (empty: it may). The lab is always allowed."""
    if target.is_lab:
        return []
    names = target.allow_names
    contexts, hosts = list(names.get("contexts", ())), list(names.get("hosts", ()))
    listed = _listed(contexts, settings.contexts) + _listed(hosts, settings.hosts)
    production = [n for n in contexts + hosts if re.search(settings.production_pattern, n)]
    where = settings.source or config_path()
    entry = (f"allow: {{contexts: [{contexts[0]}]}}" if contexts else
             f"allow: {{hosts: [{hosts[0]}]}}" if hosts else "allow: {...}")
    if production:
        missing = ([] if listed else [f"add `{entry}` to {where}"]) + ([] if yes else ["pass --yes"])
        if missing:
            return [(f"{target.name} looks like production ({', '.join(production)} matches "
                    f"productionPattern {settings.production_pattern!r}): it needs both the allow-list and "
                    f"--yes; {' and '.join(missing)}")]
        return []
    if listed or yes:
        return []
    return [(f"{target.name} is not the lab and is not allowed: add `{entry}` to {where}, or pass --yes "
            f"(`chaoslab run --dry-run` shows what would be done without doing it)")]


def abort_problems(experiment: Experiment) -> list[str]:
    """Abort conditions on metrics that are not measured live would never fire: refuse them."""
    return [f"spec.abort.{m}: not measured while the run goes on, so it could never abort; live metrics: "
            f"{', '.join(LIVE_METRICS)}" for m in experiment.abort if m not in LIVE_METRICS]


def fault_level(kind: str) -> str:
    """`api` or `node`, as the fault declares (checked when it was registered)."""
    level: str = fault_class(kind).level
    return level


def capability_problems(experiment: Experiment, target: Target, probes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Faults and probes of `experiment` that `target` says it cannot carry out, each with its reason."""
    problems = []
    for i, f in enumerate(experiment.faults):
        reason = target.node_level_refusal(f.kind) if fault_level(f.kind) == "node" else None
        if reason:
            problems.append(f"{f.where or f'spec.faults[{i}]'}: {reason}")
    reason = target.etcd_refusal()
    if reason:
        kinds = [p["kind"] for p in probes if p["kind"] in ETCD_PROBES]
        conditions = [c for c in experiment.steady_state if c in ETCD_CONDITIONS]
        if kinds:
            problems.append(f"probes {', '.join(kinds)}: {reason}")
        elif conditions:
            problems.append(f"steady state {', '.join(conditions)} needs the etcd probe: {reason}")
    return problems


@dataclass(frozen=True)
class Reach:
    """What a set of resolved faults touches."""

    nodes: set[str] = field(default_factory=set)
    pods: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    """etcd members killed, cut off or degraded."""
    lost: set[str] = field(default_factory=set)
    """etcd members out of the quorum: killed (not STOP-paused only... counted too) or on a cut-off side."""


def reach(injections: Sequence[Injection]) -> Reach:
    r = Reach()
    for inj in injections:
        for t in inj.targets:
            what, _, name = t.partition("@")
            if what == "node":
                r.nodes.add(name)
            elif what == "pod":
                r.pods.add(name)
            elif inj.component == "etcd" and what == "etcd":
                r.members.add(name)
                if inj.fault in ("kill-process", "partition", "memory-limit"):
                    r.lost.add(name)
    return r


def radius_problems(experiment: Experiment, injections: Sequence[Injection], members: int,
                    target: Target) -> list[str]:
    """Where the resolved faults exceed `spec.blastRadius`, lose etcd quorum (of `members` members)
    without `allowQuorumLoss: true`, or fill etcd (`etcd-nospace`) on `target`, not the lab, without
    `allowNospace: true`."""
    b, r, out = experiment.blast_radius, reach(injections), []
    if not target.is_lab and not b.allowNospace and any(i.fault == "etcd-nospace" for i in injections):
        out.append(f"spec.blastRadius.allowNospace: etcd-nospace makes the etcd of {target.name} "
                   f"read-only (every Kubernetes write fails) until its runbook has run; say "
                   f"`blastRadius: {{allowNospace: true}}` if that is the experiment")
    for label, limit, hit in (("maxNodes", b.maxNodes, r.nodes), ("maxPods", b.maxPods, r.pods),
                              ("maxMembers", b.maxMembers, r.members)):
        if limit is not None and len(hit) > limit:
            out.append(f"spec.blastRadius.{label}: the faults would touch {len(hit)} ({', '.join(sorted(hit))}) "
                       f"but {label} is {limit}; raise it or narrow the faults")
    majority = members // 2 + 1
    if members and r.lost and members - len(r.lost) < majority and not b.allowQuorumLoss:
        out.append(f"spec.blastRadius.allowQuorumLoss: the faults take {len(r.lost)} of {members} etcd members "
                   f"out ({', '.join(sorted(r.lost))}), leaving {members - len(r.lost)}, fewer than the "
                   f"majority of {majority}: etcd loses quorum and the API stops writing. Say "
                   f"`blastRadius: {{allowQuorumLoss: true}}` if that is the experiment")
    hooks = [t for inj in injections if inj.fault == "webhook-outage" for t in control_plane_matches(inj.targets)]
    if hooks and not b.allowControlPlaneWebhooks:
        out.append(f"spec.blastRadius.allowControlPlaneWebhooks: the webhook would match the control plane's own "
                   f"writes ({', '.join(t.partition('@')[2] for t in hooks)}: leader election, node heartbeats, "
                   f"system namespaces); say `blastRadius: {{allowControlPlaneWebhooks: true}}` if that is the "
                   f"experiment, or narrow resources and namespaces")
    return out
