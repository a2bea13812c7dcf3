"""node-lease probe: watches the node heartbeats, the Leases in `kube-node-lease` that every kubelet renews
(every quarter of its lease duration; 10 s by default), and records each renewal as it arrives, like the
`lease` probe does for the leader-election Leases. `nodeLeaseRenewalGap` (chaoslab.judge.measure) is the
longest time a node went without one while a fault held: past `--node-monitor-grace-period` (40 s by
default) the node-lifecycle controller marks the node NotReady, which is what an overload that starves
node heartbeats costs. Load: one watch, renewed every 5 s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaoslab.probes.base import Sampler, list_then_watch

PROBE = "node-lease"
PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


class NodeLeaseProbe(Sampler):
    kind = PROBE

    def _record(self, lease: Mapping[str, Any], **_: Any) -> None:
        spec = lease.get("spec", {})
        self.timeline.sample(PROBE, lease["metadata"]["name"], holder=spec.get("holderIdentity"),
                             renew=spec.get("renewTime"), duration=spec.get("leaseDurationSeconds"))

    def loop(self) -> None:
        list_then_watch(self, PATH, self._record)

    @property
    def requests_per_second(self) -> float:
        return 0.2
