"""What an experiment says, once loaded: frozen dataclasses that `chaoslab.spec.load` produces from YAML
(either the `chaoslab.io/v1alpha1 Experiment` form or the compact `ControlPlaneChaos` form) and that the
planner, runner and verdict read. Times are seconds (float); YAML durations like `30s`, `1m30s`, `500ms`
are converted by the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaoslab.spec.workload import Workload

#: Steady-state conditions an experiment may name (checked from probe samples; see docs/measurements.md).
STEADY_STATE_CONDITIONS = (
    "apiserver-ready",            # the load-balanced apiserver answers /readyz 200
    "all-apiservers-ready",       # every apiserver answers /readyz 200
    "etcd-quorum",                # a majority of members reachable and agreeing on one leader
    "etcd-leader",                # every reachable member names the same leader
    "scheduler-leader",           # the kube-scheduler Lease is held and being renewed
    "controller-manager-leader",  # the kube-controller-manager Lease is held and being renewed
    "scheduling",                 # the scheduling canary's last pod was bound
)

#: SLO metrics (see docs/measurements.md for exact definitions). Units: seconds (`s`), a whole number
#: (`count`), or a fraction from 0 to 1 (`ratio`).
METRICS = {
    "recoveryTime": "s",                       # injection → steady state holds for the settle period
    "recoveryAfterRevert": "s",                # revert → the same moment
    "etcdLeaderElections": "count",            # changes of etcd leader seen (incl. a re-election of the same member in a new term)
    "etcdTimeWithoutLeader": "s",              # total time without a working leader (none named, or the named one dead, cut off or not leading)
    "etcdTimeWithoutNamedLeader": "s",         # total time no reachable member named any leader (the figure etcdTimeWithoutLeader was before)
    "etcdTimeToNewLeader": "s",                # injection → first sample of a higher raft term with a leader
    "etcdRejoinElections": "count",            # of those, elections after the revert (a healed member's higher term)
    "schedulerLeaderElections": "count",       # changes of the kube-scheduler Lease holder
    "schedulerTimeToNewLeader": "s",           # injection → new kube-scheduler holder seen
    "controllerManagerLeaderElections": "count",
    "controllerManagerTimeToNewLeader": "s",
    "apiserverUnavailable": "s",               # total time the load-balanced /readyz was not 200
    "apiWriteUnavailable": "s",                # total time the canary's writes failed
    "schedulingLatency": "s",                  # worst create → bound time of a scheduling canary pod
    "lostWrites": "count",                     # acknowledged etcd writes not read back after the run
    "failedWrites": "count",                   # etcd writes of the workload that failed or timed out after injection
    "etcdWriteUnavailable": "s",               # total time the workload's etcd writes failed
    "staleReads": "count",                     # serializable reads older than a write acknowledged before them
    "resourceVersionRegressions": "count",     # quorum API reads older than a resourceVersion already seen
    "watchGaps": "count",                      # acknowledged updates a watch skipped (not covered by a relist)
    "watchRelists": "count",                   # relists after a watch expired (410 Gone: too old resource version)
    "apiReadErrorRate": "ratio",               # failed ÷ sent quorum reads of the sequence probe after injection
    "apiWriteErrorRate": "ratio",              # failed ÷ sent updates of the sequence probe after injection
    "reschedulingTime": "s",                   # worst eviction/deletion → replacement pod Ready (workloads probe)
    "workloadUnavailable": "s",                # total time a selected workload had fewer ready replicas than desired
    "pdbViolations": "count",                  # times a PodDisruptionBudget's healthy pods fell below its requirement
    "drainDuration": "s",                      # longest cordon → drain finished over the drained nodes
    "matchedWriteErrorRate": "ratio",          # failed ÷ sent admission-probe writes a webhook matches, while the fault held
    "unmatchedWriteErrorRate": "ratio",        # the same for writes it does not match
    "matchedWriteLatency": "s",                # p99 latency of those matched writes, while the fault held
    "unmatchedWriteLatency": "s",              # p99 latency of the unmatched writes, while the fault held
    "certExpiryDetection": "s",                # a reissued certificate's expiry → the steady state first broken
    "certRecoveryTime": "s",                   # cert-expiry's revert → the steady state holds for the settle period
    "apfRejectedRequests": "count",            # requests API Priority and Fairness rejected (429), injection → revert
    "apfMaxInQueue": "count",                  # most requests waiting in APF queues at a sample, injection → revert
    "apfWaitP99": "s",                         # p99 time requests waited in APF queues, injection → revert
    "apiMutatingLatencyP99": "s",              # p99 apiserver latency of mutating calls (SIG Scalability SLO: 1 s)
    "apiReadResourceLatencyP99": "s",          # p99 of GETs of one object (SLO: 1 s)
    "apiReadNamespaceLatencyP99": "s",         # p99 of namespace-scoped LISTs (SLO: 5 s)
    "apiReadClusterLatencyP99": "s",           # p99 of cluster-scoped LISTs (SLO: 30 s)
    "leaseRenewalGap": "s",                    # longest time without a scheduler/controller-manager Lease renewal after injection
    "nodeLeaseRenewalGap": "s",                # longest time without a renewal of any node's Lease (kube-node-lease), injection → revert
    "etcdFsyncP99": "s",                       # worst member's WAL fsync p99 while the fault held (etcd-metrics)
    "etcdBackendCommitP99": "s",               # worst member's backend commit p99 while the fault held
    "writeLatencyP99": "s",                    # p99 of the writes probe's acknowledged writes while the fault held
    "leaseRenewalLateness": "s",               # longest scheduler/controller-manager Lease renewal gap beyond the normal period
    "leaderLost": "count",                     # scheduler/controller-manager Lease holder changes after injection
    "etcdDefragPause": "s",                    # longest defragmentation of one member (etcd-defrag)
    "nospaceAlarm": "s",                       # time the NOSPACE alarm was active (etcd-metrics)
    "nospaceRecoveryTime": "s",                # etcd-nospace runbook start → first successful write
    "oomKills": "count",                       # OOM kills in memory-limit's cgroups, as the kernel counted them
}

Aggregate = Literal["max", "min", "p50", "p90", "p95", "p99"]


@dataclass(frozen=True)
class SloSpec:
    """One target: `metric: {max: 30s}` means every run's value ≤ 30 (the worst run is judged);
    `{p95: 20s}` means the 95th percentile over the runs ≤ 20; `{min: 2}` means every run's value ≥ 2."""

    metric: str
    aggregate: Aggregate
    threshold: float
    where: str = ""
    """Place in the source for messages, e.g. `experiments/kill.yaml:14 spec.slo.recoveryTime`."""


@dataclass(frozen=True)
class FaultSpec:
    """One fault: its kind (`kill-process`, later `partition`, `drain-node` …) and its parameters as
    written (validated by the fault's own params type when the plan is made)."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class TargetSpec:
    """The cluster: `lab` (optionally `name`), later `kubeconfig` (`context`) and `ssh` (hosts)."""

    kind: str = "lab"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BlastRadius:
    """Limits over the whole experiment (`spec.blastRadius`), checked against the resolved faults before
    anything is injected; None: no limit beyond each fault's own."""

    maxNodes: int | None = None  # camelCase: the YAML spelling
    """Most nodes the faults may drain or fail."""
    maxPods: int | None = None
    """Most pods the faults may evict or delete."""
    maxMembers: int | None = None
    """Most etcd members the faults may kill, cut off or degrade."""
    allowQuorumLoss: bool = False
    """Must be true when the faults leave fewer than a majority of etcd members up and connected."""
    allowControlPlaneWebhooks: bool = False
    """Must be true for a `webhook-outage` that matches the control plane's own writes (kube-system,
    kube-node-lease or every namespace; Leases, Nodes, Namespaces or every resource)."""
    allowNospace: bool = False
    """Must be true for `etcd-nospace` on a cluster that is not the lab: it makes etcd read-only until its
    runbook has run."""


@dataclass(frozen=True)
class Experiment:
    name: str
    faults: tuple[FaultSpec, ...]
    duration: float
    """Seconds the fault holds (and probes observe) before revert."""
    description: str = ""
    target: TargetSpec | None = None
    """None: not named in the file (the CLI's --target, else the running lab)."""
    steady_state: tuple[str, ...] = ("apiserver-ready", "etcd-quorum", "scheduler-leader",
                                      "controller-manager-leader")
    probes: tuple[str | Mapping[str, Any], ...] = ("control-plane",)
    """Probe sets (files in probes/) or single probes by name (etcd, lease, apiserver, canary, writes,
    kube-sequence, workloads, etcd-metrics), or a single probe with its parameters written inline (`{kind: workloads,
    selector: app=web}`; an `interval` already in seconds)."""
    slos: tuple[SloSpec, ...] = ()
    abort: Mapping[str, float] = field(default_factory=dict)
    """metric → threshold: the run is aborted (and reverted at once) when a live measurement exceeds it."""
    blast_radius: BlastRadius = field(default_factory=BlastRadius)
    runs: int = 1
    settle: float = 5.0
    """Seconds the steady state must hold continuously to count as recovered."""
    recovery_timeout: float = 120.0
    """Seconds after revert to wait for recovery before giving up (recovery then counts as not reached)."""
    workload: Workload | None = None
    """Objects created before the steady state and removed at the end (`chaoslab.spec.workload`)."""
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The document as loaded (saved into the run directory)."""
