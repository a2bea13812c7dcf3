"""The probe registry (`chaoslab.registry.Registry`, entry-point group `chaoslab.probes`) and the group that
runs a run's probes together.

    >>> group = ProbeGroup.start([{"kind": "etcd", "interval": 0.1}], target, timeline)   # doctest: +SKIP
    >>> group.stop()                                                                       # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.probes import collector
from chaoslab.probes.admission import AdmissionProbe
from chaoslab.probes.apiserver import ApiserverProbe
from chaoslab.probes.apiserver_metrics import ApiserverMetricsProbe
from chaoslab.probes.base import Sampler
from chaoslab.probes.canary import CanaryProbe
from chaoslab.probes.etcd import EtcdProbe
from chaoslab.probes.etcd_metrics import EtcdMetricsProbe
from chaoslab.probes.kube_sequence import KubeSequenceProbe
from chaoslab.probes.lease import LeaseProbe
from chaoslab.probes.node_lease import NodeLeaseProbe
from chaoslab.probes.records import RecordsProbe
from chaoslab.probes.workloads import WorkloadsProbe
from chaoslab.probes.writes import WritesProbe
from chaoslab.registry import Registry
from chaoslab.targets import Target
from chaoslab.timeline import Timeline


def contract_problems(cls: type[Sampler]) -> list[str]:
    """What a probe class lacks: it is a `Sampler`, and its constructor takes every parameter it declares
    (`params`, besides `interval`) as a keyword."""
    if not (isinstance(cls, type) and issubclass(cls, Sampler)):
        return ["must derive from chaoslab.probes.base.Sampler"]
    declared = getattr(cls, "params", None)
    if not isinstance(declared, tuple) or not all(isinstance(p, str) for p in declared):
        return ["params must be a tuple of parameter names"]
    takes = inspect.signature(cls.__init__).parameters
    return [f"__init__ does not take its declared parameter {p!r}" for p in declared if p not in takes]


PROBES: Registry[type[Sampler]] = Registry("probe", "chaoslab.probes", contract_problems)
for _probe in (EtcdProbe, LeaseProbe, ApiserverProbe, CanaryProbe, WritesProbe, KubeSequenceProbe, WorkloadsProbe,
               AdmissionProbe, ApiserverMetricsProbe, EtcdMetricsProbe, RecordsProbe,
               NodeLeaseProbe):
    PROBES.register(_probe)


class ProbeGroup:
    def __init__(self, samplers: list[Sampler]) -> None:
        self.samplers = samplers
        self._held = False

    @classmethod
    def start(cls, probes: Sequence[Mapping[str, Any]], target: Target, timeline: Timeline) -> ProbeGroup:
        samplers = []
        for p in probes:
            probe = PROBES.get_kind(str(p["kind"]))
            unknown = sorted(set(p) - {"kind", "interval", *probe.params})
            if unknown:
                raise SpecError([(f"probe {probe.kind}: unknown parameter(s) {', '.join(unknown)}; it takes "
                                  f"{', '.join(['interval', *probe.params])}")])
            kw: dict[str, Any] = {k: v for k, v in p.items() if k in probe.params and v is not None}
            if "interval" in p:
                kw["interval"] = float(p["interval"])
            samplers.append(probe(target, timeline, **kw))
        group = cls(samplers)
        collector.hold()  # no full garbage collection stalls the samples (`chaoslab.probes.collector`)
        group._held = True
        try:
            for s in samplers:
                s.start()
        except BaseException:
            group.stop()
            raise
        return group

    @property
    def requests_per_second(self) -> float:
        return sum(s.requests_per_second for s in self.samplers)

    def settled_until(self, now: float) -> float:
        """Up to when the timeline is final: no sample with an earlier time can still arrive (`now` must be
        read before calling: a request sent after it has a later time)."""
        return min([now, *(s.settled_until(now) for s in self.samplers)])

    def stop(self) -> None:
        for s in self.samplers:
            s.stopped.set()
        try:
            for s in self.samplers:
                s.stop()
        finally:
            if self._held:
                self._held = False
                collector.release()
