"""Ground truth: what the components themselves recorded, beside what the probes measured.

etcd logs (zap JSON, millisecond UTC timestamps) `"<id> became leader at term N"` on the member that won;
kube-scheduler and kube-controller-manager log (klog: local time, microseconds, no year) `successfully
acquired lease kube-system/<name>` on the instance that took the Lease over. One line per election, on
the same machine's clock as the run when the target is the lab. The `records` probe
(`chaoslab.probes.records`) reads them for the run's window through the target and puts each on the
timeline as a `records` sample; `compare` sets the measured figures beside them, with the difference,
and says where they disagree beyond the measurement's bracket. Pure functions of text and timelines.

    >>> parse_etcd_log('{"ts":"2026-12-02T05:57:02.287Z","msg":"9576e40b89e4e8fe became leader at term 2"}', "cp1")
    [Record(wall=1796191022.287, component='etcd', host='cp1', term=2)]
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chaoslab.timeline import Sample, Timeline

PROBE = "records"
#: Lease name → the SLO metric prefix of its elections (as in `chaoslab.judge.measure.LEASE_METRICS`).
LEASE_COMPONENTS = {"kube-scheduler": "scheduler", "kube-controller-manager": "controllerManager"}
COMPONENTS = ("etcd", *LEASE_COMPONENTS)

_ETCD = re.compile(r"became leader at term (\d+)")
_KLOG = re.compile(r"^I(\d\d)(\d\d) (\d\d:\d\d:\d\d\.\d{6})\s+\d+ \S+\] successfully acquired lease kube-system/(\S+)")


@dataclass(frozen=True)
class Record:
    """One election, as the winner logged it."""

    wall: float
    """Unix time."""
    component: str
    host: str
    term: int | None = None
    """etcd's raft term (None for Leases)."""


def parse_etcd_log(text: str, host: str) -> list[Record]:
    """Every `became leader at term N` line of one member's log."""
    out = []
    for line in text.splitlines():
        if "became leader at term" not in line or not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
            m = _ETCD.search(str(entry.get("msg", "")))
            wall = dt.datetime.fromisoformat(str(entry["ts"])).timestamp()
        except (ValueError, KeyError):
            continue
        if m:
            out.append(Record(round(wall, 6), "etcd", host, int(m.group(1))))
    return out


def parse_klog_leases(text: str, component: str, host: str, year: int) -> list[Record]:
    """Every `successfully acquired lease kube-system/<component>` line of one instance's log. klog writes
    local time without a year: `year` is the run's (a line from December read in January is last year's)."""
    out = []
    for line in text.splitlines():
        m = _KLOG.match(line)
        if not m or m.group(4) != component:
            continue
        month, day = int(m.group(1)), int(m.group(2))
        try:
            stamp = dt.datetime.strptime(f"{year:04d}{month:02d}{day:02d} {m.group(3)}", "%Y%m%d %H:%M:%S.%f")
        except ValueError:
            continue
        out.append(Record(round(stamp.timestamp(), 6), component, host))  # naive: local time, as klog wrote it
    return out


def parse(component: str, host: str, text: str, year: int) -> list[Record]:
    return parse_etcd_log(text, host) if component == "etcd" else parse_klog_leases(text, component, host, year)


def in_window(records: Iterable[Record], start_wall: float, end_wall: float) -> list[Record]:
    return sorted((r for r in records if start_wall <= r.wall <= end_wall), key=lambda r: r.wall)


# ---- beside the measurements ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Truth:
    """One metric by the components' own records, against the probe's figure."""

    metric: str
    truth: float
    measured: float | None
    bracket: tuple[float, float] | None
    source: str
    earliest: float | None = None
    """Where the records bound the moment from both sides: it lies in [earliest, truth]. A Lease takeover
    is committed after its holder stamped `acquireTime` into the Lease (its own clock; the lab's is the
    run's) and before the holder logs it (after its update returned)."""

    @property
    def error(self) -> float | None:
        """measured − truth (seconds or a count)."""
        return None if self.measured is None else round(self.measured - self.truth, 4)

    @property
    def agrees(self) -> bool:
        """Counts equal; a time's bracket contains the truth (1 ms of slack: etcd logs milliseconds)."""
        if self.bracket is None:
            return self.measured is not None and abs(self.measured - self.truth) < 1e-9
        earliest = self.truth if self.earliest is None else min(self.earliest, self.truth)
        return max(self.bracket[0], earliest) <= min(self.bracket[1], self.truth) + 0.001

    def sentence(self, unit: str) -> str:
        if unit == "count":
            text = f"ground truth: {self.truth:g} by {self.source}"
            return text + ("" if self.agrees else f"; ⚠ DISAGREES with the measured {self.measured}")
        text = f"ground truth: {self.truth:.3f} s by {self.source}"
        if self.earliest is not None:
            text += f", after the Lease's acquireTime at {self.earliest:.3f} s"
        if self.measured is None:
            return text
        diff = f"measured {self.error:+.3f} s"
        if self.agrees:
            return f"{text} ({diff}, within the bracket)"
        lo, hi = self.bracket or (self.measured, self.measured)
        return f"{text} ({diff}; ⚠ DISAGREES: outside the bracket {lo:.3f}–{hi:.3f} s)"


def _records(timeline: Timeline) -> list[Sample]:
    return [s for s in timeline.samples_of(PROBE) if s.values.get("what") == "leader"]


def compare(timeline: Timeline, inject: float, end: float, values: Mapping[str, float | None],
            brackets: Mapping[str, tuple[float, float]]) -> list[Truth]:
    """The leader metrics by the components' records after the injection (empty when the timeline has no
    records: the target could not read its components' logs, or the probe was not run)."""
    # Only what the other probes could have seen: records up to the run's end.
    end = min([end, *(e.t for e in timeline.events_of("run-end"))])
    records = _records(timeline)
    read = timeline.samples_of(PROBE, "read")
    if not records and not read:
        return []
    # A component with a log the target could not read (the ssh target reads none) has no ground truth:
    # counting its lines would say 0 elections.
    unread = {str(u).partition("@")[0] for s in read for u in s.values.get("unread") or ()}
    out = []
    for component, prefix in (("etcd", "etcd"), *LEASE_COMPONENTS.items()):
        if component in unread:
            continue
        won = [s for s in records if s.values.get("component") == component and inject <= s.t <= end]
        elections = f"{prefix}LeaderElections"
        if values.get(elections) is not None or won:
            source = f"{len(won)} '{'became leader' if component == 'etcd' else 'successfully acquired lease'}' " \
                     f"line{'s' if len(won) != 1 else ''} in the {component} logs"
            out.append(Truth(elections, float(len(won)), values.get(elections), None, source))
        if won:
            first = won[0]
            how = (f"term {first.values.get('term')}" if component == "etcd" else "acquired the Lease")
            metric = f"{prefix}TimeToNewLeader"
            acquired = None if component == "etcd" else acquired_at(timeline, component,
                                                                   str(first.values.get("host")), inject)
            out.append(Truth(metric, round(first.t - inject, 4), values.get(metric), brackets.get(metric),
                             f"{component}@{first.values.get('host')}'s log ({how} at t={first.t:.3f} s)",
                             None if acquired is None else round(acquired - inject, 4)))
    return out


def acquired_at(timeline: Timeline, lease: str, host: str, inject: float) -> float | None:
    """When the new holder on `host` stamped `acquireTime` into the Lease, in timeline seconds (None when
    the samples do not carry it)."""
    stamp = next((s.values.get("acquire") for s in timeline.samples_of("lease", lease)
                  if s.t >= inject and s.values.get("holder") == host and s.values.get("acquire")), None)
    try:
        return dt.datetime.fromisoformat(str(stamp)).timestamp() - timeline.started_wall if stamp else None
    except ValueError:
        return None
