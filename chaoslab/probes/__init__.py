"""The probe registry and the group that runs a run's probes together.

    >>> group = ProbeGroup.start([{"kind": "etcd", "interval": 0.1}], target, timeline)   # doctest: +SKIP
    >>> group.stop()                                                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.probes.apiserver import ApiserverProbe
from chaoslab.probes.base import Sampler
from chaoslab.probes.canary import CanaryProbe
from chaoslab.probes.etcd import EtcdProbe
from chaoslab.probes.kube_sequence import KubeSequenceProbe
from chaoslab.probes.lease import LeaseProbe
from chaoslab.probes.records import RecordsProbe
from chaoslab.probes.workloads import WorkloadsProbe
from chaoslab.probes.writes import WritesProbe
from chaoslab.targets import Target
from chaoslab.timeline import Timeline

PROBES: dict[str, type[Sampler]] = {p.kind: p for p in (EtcdProbe, LeaseProbe, ApiserverProbe, CanaryProbe,
                                                        WritesProbe, KubeSequenceProbe, WorkloadsProbe,
                                                        RecordsProbe)}


class ProbeGroup:
    def __init__(self, samplers: list[Sampler]) -> None:
        self.samplers = samplers

    @classmethod
    def start(cls, probes: Sequence[Mapping[str, Any]], target: Target, timeline: Timeline) -> ProbeGroup:
        samplers = []
        for p in probes:
            kind = p["kind"]
            if kind not in PROBES:
                raise SpecError([f"unknown probe kind {kind!r}; known: {', '.join(sorted(PROBES))}"])
            kw: dict[str, Any] = {}
            if "interval" in p:
                kw["interval"] = float(p["interval"])
            if kind == "lease" and "names" in p:
                kw["names"] = tuple(p["names"])
            if kind == "workloads":
                kw["namespaces"] = tuple(p.get("namespaces") or ("default",))
                kw["selector"] = p.get("selector")
            samplers.append(PROBES[kind](target, timeline, **kw))
        for s in samplers:
            s.start()
        return cls(samplers)

    @property
    def requests_per_second(self) -> float:
        return sum(s.requests_per_second for s in self.samplers)

    def stop(self) -> None:
        for s in self.samplers:
            s.stopped.set()
        for s in self.samplers:
            s.stop()
