"""`node-failure`: worker nodes stop heartbeating, as when their kubelet dies or the node becomes
unreachable; the real node-lifecycle controller must notice and, once the pods' tolerations expire, evict
them so their controllers put replacements on other nodes. Revert restores the heartbeat.

Which nodes: `nodes` by name, or `count` (default 1) or `percent` of the nodes matching `selector` (all
nodes without one), at random — the same selection as `drain-node` — never more than `maxNodes` (default
1): a larger selection is refused, not cut down. A node that is not Ready now is refused too: its failure
would measure nothing.

How: `Target.stop_heartbeat(node, True)`. On the lab the node simulator stops that node's Lease renewals,
status updates and pod work (chaoslab.lab.nodes); other targets say they cannot. Resolve records the undo
(`resume-heartbeat` of the chosen nodes) before inject stops anything, so Ctrl-C, an abort and
`chaoslab recover` all restore the heartbeat.

What follows is Kubernetes' own doing, which is what the experiment measures: after
`--node-monitor-grace-period` (40 s by default) the node's Ready condition turns Unknown and it is tainted
`node.kubernetes.io/unreachable` (NoExecute); each pod is evicted when its toleration for that taint runs
out — `tolerationSeconds` 300 unless the pod says otherwise (the apiserver's DefaultTolerationSeconds
admission plugin, `--default-unreachable-toleration-seconds`). Its replacements are scheduled elsewhere;
the evicted pods stay Terminating until the node is back. If every node of a zone fails, the controller
stops evicting altogether (full disruption), so keep `maxNodes` below the node count.

Timeline events: ``heartbeat`` (``node``, ``stopped`` true) per node at injection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults.base import FaultBase, FaultParams, Injection, Record, Undo, ignore_events
from chaoslab.faults.drain_node import select_nodes
from chaoslab.faults.selection import selection_problems
from chaoslab.targets import Target


@dataclass(frozen=True)
class NodeFailureParams(FaultParams):
    nodes: Sequence[str] = ()
    """Nodes by name (then `count`, `percent` and `selector` must not be set)."""
    selector: str | None = None
    """Label selector narrowing the candidate nodes, e.g. `chaoslab.io/simulated=true`."""
    count: int | None = None
    """How many candidate nodes fail, picked at random (default 1)."""
    percent: float | None = None
    """Or this percentage of the candidates, rounded up."""
    maxNodes: int = 1  # camelCase fields: the YAML spelling, as build() passes them
    """Blast-radius limit: refuse to fail more nodes than this (default 1)."""

    def __post_init__(self) -> None:
        problems = selection_problems("node-failure", "node", self.nodes, self.selector, self.count, self.percent,
                                      self.maxNodes, "maxNodes")
        if problems:
            raise SpecError(problems)


def ready(node: Mapping[str, Any]) -> str:
    """The status of the node's Ready condition: True, False, Unknown, or "" when it has none."""
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status", ""))
    return ""


class NodeFailure(FaultBase[NodeFailureParams]):
    kind: ClassVar[str] = "node-failure"
    params_type: ClassVar[type] = NodeFailureParams
    level: ClassVar[str] = "node"
    """Acts on hosts (processes, packet filters, kubelets), not through the API."""

    def resolve(self, target: Target, index: int) -> Injection:
        p = self.params
        chosen, candidates = select_nodes(target.api(), self.kind, p.nodes, p.selector, p.count, p.percent,
                                          p.maxNodes, self.rng)
        state = {n["metadata"]["name"]: ready(n) for n in candidates}
        unready = [f"{n} (Ready={state[n] or 'none'})" for n in chosen if state[n] != "True"]
        if unready:
            raise InjectionError(f"node-failure: {', '.join(unready)} not Ready now; its failure would measure "
                                 f"nothing; wait until it is Ready or choose another node; nothing was stopped")
        undo = Undo("resume-heartbeat", {"nodes": chosen})
        role = "by name" if p.nodes else (f"selector {p.selector}" if p.selector else "random")
        return Injection(self.kind, index, "node", role, tuple(f"node@{n}" for n in chosen), (undo,))

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        return ([f"stop the heartbeat of {t}" for t in injection.targets],
                [f"resume the heartbeat of {t}" for t in injection.targets])

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        for t in injection.targets:
            node = t.split("@", 1)[1]
            target.stop_heartbeat(node, stopped=True)
            record("heartbeat", fault=self.kind, index=injection.index, node=node, stopped=True)
