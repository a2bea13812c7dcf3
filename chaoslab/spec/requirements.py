"""What each SLO metric, abort condition and steady-state condition needs measured: the probe kinds (and
faults) without which it could only ever be "not measured". The loader refuses such an experiment
(`chaoslab validate` and `chaoslab run` exit 2) naming the SLO and the probe to add, so nothing
unmeasurable reaches a run. Pure; the table is the one place that knows which probe feeds which metric
(docs/measurements.md has the same, per metric).

    >>> unmet_needs({"lostWrites": "spec.slo.lostWrites"}, {}, {}, {"etcd", "lease"}, {"partition"}, {})
    [Need(what='lostWrites', where='spec.slo.lostWrites', probe='writes', fault=None, lease=None)]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

#: SLO metric → the probe kind whose samples it is measured from (None: from the faults' own events).
METRIC_PROBE: dict[str, str | None] = {
    "etcdLeaderElections": "etcd", "etcdTimeWithoutLeader": "etcd", "etcdTimeWithoutNamedLeader": "etcd",
    "etcdTimeToNewLeader": "etcd", "etcdRejoinElections": "etcd",
    "schedulerLeaderElections": "lease", "schedulerTimeToNewLeader": "lease",
    "controllerManagerLeaderElections": "lease", "controllerManagerTimeToNewLeader": "lease",
    "apiserverUnavailable": "apiserver",
    "apiWriteUnavailable": "canary", "schedulingLatency": "canary",
    "lostWrites": "writes", "failedWrites": "writes", "etcdWriteUnavailable": "writes", "staleReads": "writes",
    "resourceVersionRegressions": "kube-sequence", "watchGaps": "kube-sequence", "watchRelists": "kube-sequence",
    "apiReadErrorRate": "kube-sequence", "apiWriteErrorRate": "kube-sequence",
    "reschedulingTime": "workloads", "workloadUnavailable": "workloads", "pdbViolations": "workloads",
    "drainDuration": None,
    "etcdFsyncP99": "etcd-metrics", "etcdBackendCommitP99": "etcd-metrics", "nospaceAlarm": "etcd-metrics",
    "writeLatencyP99": "writes", "leaseRenewalLateness": "lease", "leaderLost": "lease", "leaseRenewalGap": "lease",
    "etcdDefragPause": None, "nospaceRecoveryTime": None,
    "matchedWriteErrorRate": "admission", "unmatchedWriteErrorRate": "admission",
    "matchedWriteLatency": "admission", "unmatchedWriteLatency": "admission",
    "certExpiryDetection": None, "certRecoveryTime": None, "oomKills": None,
    "apfRejectedRequests": "apiserver-metrics", "apfMaxInQueue": "apiserver-metrics", "apfWaitP99": "apiserver-metrics",
    "apiMutatingLatencyP99": "apiserver-metrics", "apiReadResourceLatencyP99": "apiserver-metrics",
    "apiReadNamespaceLatencyP99": "apiserver-metrics", "apiReadClusterLatencyP99": "apiserver-metrics",
    "nodeLeaseRenewalGap": "node-lease",
    # From the steady-state conditions: each needs the probes of the experiment's own conditions.
    "recoveryTime": None, "recoveryAfterRevert": None,
}
#: Metrics measured from a fault's own events: the fault kind that must be in the experiment.
METRIC_FAULT = {"drainDuration": "drain-node", "etcdDefragPause": "etcd-defrag", "nospaceRecoveryTime": "etcd-nospace",
                "certExpiryDetection": "cert-expiry", "certRecoveryTime": "cert-expiry", "oomKills": "memory-limit"}
#: Metrics that need one Lease watched (when the lease probe names its Leases).
METRIC_LEASE = {"schedulerLeaderElections": "kube-scheduler", "schedulerTimeToNewLeader": "kube-scheduler",
                "controllerManagerLeaderElections": "kube-controller-manager",
                "controllerManagerTimeToNewLeader": "kube-controller-manager"}
#: Steady-state condition → the probe kind it is judged from.
CONDITION_PROBE = {"apiserver-ready": "apiserver", "all-apiservers-ready": "apiserver", "etcd-quorum": "etcd",
                   "etcd-leader": "etcd", "scheduler-leader": "lease", "controller-manager-leader": "lease",
                   "scheduling": "canary"}
CONDITION_LEASE = {"scheduler-leader": "kube-scheduler", "controller-manager-leader": "kube-controller-manager"}


@dataclass(frozen=True)
class Need:
    """Something the experiment asks for that its probes or faults cannot measure."""

    what: str
    """The SLO metric, abort metric or steady-state condition."""
    where: str
    """Its place in the file (as the loader gives it)."""
    probe: str | None
    """The probe kind to add (None: a fault is missing)."""
    fault: str | None = None
    lease: str | None = None
    """The Lease the lease probe must also watch (its `names` leave it out)."""

    def message(self, probe_sets: Mapping[str, Collection[str]] = {}) -> str:
        if self.fault:
            return (f"{self.where}: {self.what} is measured from a {self.fault} fault's events, and this "
                    f"experiment has no {self.fault} fault; remove the SLO or add the fault")
        if self.lease:
            return (f"{self.where}: {self.what} needs the lease probe to watch {self.lease}, which its `names` "
                    f"leave out; add {self.lease} to the lease probe's names")
        sets = sorted(name for name, kinds in probe_sets.items() if self.probe in kinds)
        also = f" or a probe set that has it ({', '.join(sets)})" if sets else ""
        return (f"{self.where}: {self.what} needs the {self.probe} probe, which this experiment does not run, "
                f"so it could only be 'not measured'; add `{self.probe}` to spec.probes{also}")


def unmet_needs(slos: Mapping[str, str], abort: Mapping[str, str], steady_state: Mapping[str, str],
                probes: Collection[str], faults: Collection[str],
                lease_names: Mapping[str, Collection[str]] | None = None) -> list[Need]:
    """Every SLO (metric → place), abort metric and steady-state condition the probe kinds `probes` and
    fault kinds `faults` cannot measure. `lease_names`: the lease probe's `names` when it restricts them.
    recoveryTime and recoveryAfterRevert need what the steady-state conditions need (checked with them)."""
    out = []
    watched = set((lease_names or {}).get("lease", ())) if lease_names else None

    def check(what: str, where: str, probe: str | None, lease: str | None) -> None:
        if probe is not None and probe not in probes:
            out.append(Need(what, where, probe))
        elif lease is not None and watched is not None and lease not in watched:
            out.append(Need(what, where, probe, lease=lease))

    for metric, where in slos.items():
        if (fault := METRIC_FAULT.get(metric)) and fault not in faults:
            out.append(Need(metric, where, None, fault))
        check(metric, where, METRIC_PROBE.get(metric), METRIC_LEASE.get(metric))
    for metric, where in abort.items():
        check(metric, where, METRIC_PROBE.get(metric), METRIC_LEASE.get(metric))
    for condition, where in steady_state.items():
        check(condition, where, CONDITION_PROBE.get(condition), CONDITION_LEASE.get(condition))
    return out
