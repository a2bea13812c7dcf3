"""The append-only record of one run: samples from probes and events from the runner.

Probes (samplers) and the runner append concurrently from their own threads; everything downstream
(measurements, verdict, reports) reads a finished `Timeline` and never mutates it. A timeline is saved as
JSON lines (`timeline.jsonl`, one record a line, first line a header) so `chaoslab report RUN_DIR` can
rebuild every report later.

Times are seconds since the run started, on the monotonic clock (`t`); the header keeps the wall-clock
time of `t = 0` so reports can print wall times.

Sample vocabulary (probe → subject → values):

- ``etcd``      member name (cp1…) → ``reachable`` bool, ``leader`` member name or None, ``term`` int or
                None, ``index`` int or None, ``error`` str or None, ``rtt`` the request's round trip (the
                state shown held at some moment in [t, t + rtt]). One sample per member per poll.
- ``lease``     lease name (kube-scheduler, kube-controller-manager) → ``holder`` host name or None,
                ``identity`` full holderIdentity or None, ``renew`` the renewTime string as written by the
                holder (a new value = a renewal observed now), ``duration`` leaseDurationSeconds.
                Timestamped on arrival of the watch event, never from renewTime (another clock).
                ``acquire`` the acquireTime as written by the holder; reads (quorum LISTs) also carry
                ``via`` "list" and ``rtt``, timestamped when sent.
- ``records``   ``<component>@<host>`` → the components' own records of the run (ground truth, read at
                the end): ``what`` "leader", ``component``, ``host``, ``term`` (etcd), ``wall``; ``read``
                → ``ok``, ``error``.
- ``apiserver`` host name, or ``lb`` for the load-balanced endpoint → ``ready`` bool, ``status`` int or
                None (None: no answer).
- ``canary``    ``write`` → ``ok`` bool, ``seconds`` request latency, ``error`` str or None: one API write
                (the canary pod's creation) — the API is writable when ok.
                ``scheduling`` → ``pod`` name, ``bound`` bool, ``seconds`` from create to bound (or pending
                so far); sampled when the pod is created, while pending, and once when bound.
- ``kube-sequence`` ``update``, ``read-<endpoint>``, ``watch-<endpoint>``: see
                `chaoslab.probes.kube_sequence` and docs/measurements.md.
- ``etcd-metrics`` member name (disk histograms, raft counters, database size) and ``alarms``: see
                `chaoslab.probes.etcd_metrics` and docs/measurements.md.
- ``workloads``  ``Deployment/NS/NAME``, ``StatefulSet/NS/NAME`` (replicas), ``pod`` (a pod's changes) and
                ``pdb/NS/NAME`` (budgets): see `chaoslab.probes.workloads` and docs/measurements.md.

Event vocabulary (kind → detail): ``run-start`` (``experiment``, ``run`` index), ``steady-state``
(``phase`` "before" or "after", ``ok``, ``failing`` list of conditions), ``inject`` (``fault`` kind,
``index``, ``targets`` list like ["kube-scheduler@cp1"], ``component``, ``role`` e.g. "leader"),
``revert`` (``fault``, ``index``, ``ok``, ``error``), ``abort`` (``reason``), ``run-end``. Faults whose
inject takes ``record`` add their own: ``cordon``, ``eviction`` and ``drain`` from ``drain-node`` (see
chaoslab.faults.drain_node); ``degrade`` from ``network-degrade`` when it delays (``host``, ``mechanism``
"netem" or "nfqueue", ``on`` the hosts it runs on, ``delay_ms``, ``jitter_ms``); ``disk-latency`` per member
(``host``, ``pid``, ``delay_ms``, ``jitter_ms``, ``stall_ms``); ``nospace`` from ``etcd-nospace`` (``keys``,
``bytes``, ``seconds``, ``quota``, ``alarms``) and, at its revert, ``runbook`` per step (``step``, ``seconds``,
``ok``, ``detail``); ``ballast`` and ``defrag`` (``member``, ``seconds``, ``ok``, ``error``) from
``etcd-defrag``. The storage faults are in docs/faults-storage.md. ``memory-limit`` (``host``, ``pid``,
``component``, ``cgroup``, ``headroom_bytes``, ``rss_bytes``) and, at its revert, ``memory-released``
(``max_usage_bytes``, ``failcnt``, ``oom_kills``) from ``memory-limit`` (docs/faults-api.md).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "chaoslab.io/timeline/v1"

EFFECT_EVENTS = {"signalling": "process-signalled", "rules-installing": "rules-installed"}
"""A fault that takes effect later than its `inject` event (a kill-process signal, a partition's rules: over
ssh, seconds later) records the first of a pair before and the second after, with its `fault` and `index`."""


@dataclass(frozen=True)
class Sample:
    """One observation by one probe."""

    t: float
    probe: str
    subject: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Event:
    """Something the runner did or decided."""

    t: float
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class Timeline:
    """Thread-safe while recording; treat as read-only once the run ends.

    >>> tl = Timeline.start(clock=lambda: 10.0)
    >>> tl.sample("etcd", "cp1", reachable=True, leader="cp1", term=2, index=9, error=None)
    >>> [s.subject for s in tl.samples_of("etcd")]
    ['cp1']
    """

    def __init__(self, started_wall: float, t0: float, clock: Any = time.monotonic) -> None:
        self.started_wall = started_wall
        self._t0 = t0
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self.samples: list[Sample] = []
        self.events: list[Event] = []

    @classmethod
    def start(cls, clock: Any = time.monotonic) -> Timeline:
        return cls(started_wall=time.time(), t0=clock(), clock=clock)

    def now(self) -> float:
        """Seconds since the run started."""
        return float(self._clock() - self._t0)

    def sample(self, probe: str, subject: str, *, t: float | None = None, **values: Any) -> None:
        s = Sample(self.now() if t is None else t, probe, subject, values)
        with self._lock:
            self.samples.append(s)

    def event(self, kind: str, *, t: float | None = None, **detail: Any) -> Event:
        e = Event(self.now() if t is None else t, kind, detail)
        with self._lock:
            self.events.append(e)
            self._generation += 1
            self._changed.notify_all()
        return e

    @property
    def generation(self) -> int:
        """Counts the events recorded so far (and `wake` calls)."""
        return self._generation

    def wait_for_event(self, seen: int, timeout: float) -> int:
        """Block until an event is recorded after generation `seen` (or `wake` is called), for at most
        `timeout` seconds; the generation then. A paced probe sleeps here, so an inject event switches it
        to its fast pace at once instead of after its slow interval."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, max(0.0, timeout))
            return self._generation

    def wake(self) -> None:
        """Wake every `wait_for_event` (a probe being stopped)."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    # ---- reading ----------------------------------------------------------------------------------
    def snapshot(self) -> list[Sample]:
        """Every sample so far (a copy: probes keep appending while a run goes on)."""
        with self._lock:
            return list(self.samples)

    def samples_of(self, probe: str, subject: str | None = None) -> list[Sample]:
        with self._lock:
            out = [s for s in self.samples if s.probe == probe and (subject is None or s.subject == subject)]
        return sorted(out, key=lambda s: s.t)

    def events_of(self, kind: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.kind == kind]

    @property
    def end(self) -> float:
        with self._lock:
            times = [s.t for s in self.samples] + [e.t for e in self.events]
        return max(times, default=0.0)

    # ---- persistence ------------------------------------------------------------------------------
    def records(self) -> Iterator[dict[str, Any]]:
        yield {"format": FORMAT, "startedWall": self.started_wall}
        with self._lock:
            items: list[Sample | Event] = [*self.samples, *self.events]
        for item in sorted(items, key=lambda i: i.t):
            if isinstance(item, Sample):
                yield {"t": round(item.t, 4), "probe": item.probe, "subject": item.subject,
                       "values": dict(item.values)}
            else:
                yield {"t": round(item.t, 4), "event": item.kind, "detail": dict(item.detail)}

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as f:
            for rec in self.records():
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        tmp.replace(path)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Timeline:
        it = iter(records)
        header = next(it)
        if header.get("format") != FORMAT:
            raise ValueError(f"not a chaoslab timeline (format {header.get('format')!r}, expected {FORMAT})")
        tl = cls(started_wall=float(header["startedWall"]), t0=0.0, clock=lambda: 0.0)
        for rec in it:
            if "event" in rec:
                tl.events.append(Event(float(rec["t"]), rec["event"], rec.get("detail", {})))
            else:
                tl.samples.append(Sample(float(rec["t"]), rec["probe"], rec["subject"], rec.get("values", {})))
        return tl

    @classmethod
    def load(cls, path: Path) -> Timeline:
        with path.open() as f:
            return cls.from_records(json.loads(line) for line in f if line.strip())
