"""Workload disruption, judged from a timeline: how fast evicted pods were replaced (`reschedulingTime`),
how long selected workloads ran short of ready replicas (`workloadUnavailable`), whether a PodDisruptionBudget
was ever breached (`pdbViolations`) and what each drain did (`drainDuration` and the report's drain summary).

Pure functions over what the `workloads` probe (`chaoslab.probes.workloads`) sampled and the `cordon`,
`eviction` and `drain` events the `drain-node` fault recorded; `chaoslab.judge.measure` calls them, and the
reports call `drains`. The label-selector and budget arithmetic the probe uses lives here too, so it is
tested once. Definitions, with examples, are in docs/measurements.md.

    >>> matches({"matchLabels": {"app": "web"}}, {"app": "web", "pod-template-hash": "5d8f"})
    True
    >>> required_healthy({"minAvailable": "50%"}, expected=5)
    3
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaoslab.judge.brackets import previous_instant, rounded
from chaoslab.judge.conditions import Interval, merge, spans
from chaoslab.timeline import Event, Sample, Timeline

PROBE = "workloads"
POD = "pod"
"""Subject of the pod samples; workloads are `Deployment/ns/name` or `StatefulSet/ns/name`, budgets `pdb/ns/name`."""
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
REMOVED = ("evicted", "deleted")
"""Eviction outcomes after which the pod is going away (the API accepted it)."""
TOLERANCE = 0.5
"""Seconds a replacement may be first seen before its predecessor's eviction event was recorded: the
fault records the event after the API's answer, and the probe may see the new pod in between."""



def _ts(t: float) -> str:
    return f"t={t:.2f} s"


# ---- what the probe computes ------------------------------------------------------------------------------
def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against labels. An empty selector
    matches everything, as for Deployments; a missing one (None) matches nothing, as for PDBs in policy/v1."""
    if selector is None:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _scaled(value: int | str, total: int) -> int:
    """An IntOrString against `total`: percentages round up, as the disruption controller rounds them."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def required_healthy(spec: Mapping[str, Any], expected: int | None) -> int | None:
    """How many healthy pods a PDB spec demands: `minAvailable`, or `expected` − `maxUnavailable`;
    None when it depends on the expected pod count and that is unknown."""
    if spec.get("minAvailable") is not None:
        value = spec["minAvailable"]
        if isinstance(value, str) and value.endswith("%"):
            return None if expected is None else _scaled(value, expected)
        return int(value)
    if spec.get("maxUnavailable") is not None and expected is not None:
        return max(0, expected - _scaled(spec["maxUnavailable"], expected))
    return None


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_healthy(pod: Mapping[str, Any]) -> bool:
    """What the disruption controller counts as healthy: Ready and not being deleted."""
    return pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")


# ---- helpers --------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (as `chaoslab.judge.verdict.percentile`)."""
    xs = sorted(values)
    rank = p / 100 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def _by_subject(tl: Timeline, prefix: str) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in tl.samples_of(PROBE):
        if s.subject.startswith(prefix):
            out.setdefault(s.subject, []).append(s)
    return out


def workload_samples(tl: Timeline) -> dict[str, list[Sample]]:
    return {k: v for kind in WORKLOAD_KINDS for k, v in _by_subject(tl, f"{kind}/").items()}


# ---- pods ---------------------------------------------------------------------------------------------------
@dataclass
class PodTrack:
    """One pod (by uid) as the probe saw it."""

    uid: str
    pod: str
    workload: str
    first: float
    node: str | None = None
    ready_at: float | None = None
    """First sample that saw it Ready."""
    deleting_at: float | None = None
    gone_at: float | None = None


def pods(tl: Timeline) -> dict[str, PodTrack]:
    out: dict[str, PodTrack] = {}
    for s in tl.samples_of(PROBE, POD):
        v = s.values
        uid = str(v.get("uid"))
        track = out.get(uid)
        if track is None:
            track = out[uid] = PodTrack(uid, str(v.get("pod")), str(v.get("workload")), s.t)
        track.node = v.get("node") or track.node
        if v.get("ready") and track.ready_at is None:
            track.ready_at = s.t
        if v.get("deleting") and track.deleting_at is None:
            track.deleting_at = s.t
        if v.get("gone") and track.gone_at is None:
            track.gone_at = s.t
    return out


# ---- reschedulingTime ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replacement:
    """One pod taken away after injection and what replaced it."""

    old: PodTrack
    removed: float
    how: str
    """`evicted`/`deleted` (from the fault's eviction event) or `seen deleting`/`seen gone` (probe only)."""
    new: PodTrack | None
    seconds: float
    """Removal → replacement first seen Ready; without one, removal → end of the run (a lower bound)."""
    low: float | None = None
    """The bracket's lower edge: removal → the probe's last look before it saw the replacement Ready."""

    @property
    def ready(self) -> bool:
        return self.new is not None and self.new.ready_at is not None


@dataclass(frozen=True)
class Rescheduling:
    replacements: list[Replacement] = field(default_factory=list)

    @property
    def value(self) -> float | None:
        return round(max(r.seconds for r in self.replacements), 4) if self.replacements else None

    @property
    def bracket(self) -> tuple[float, float] | None:
        """Where the longest replacement truly lies: each Ready was seen at one look of the probe and
        happened after the look before it."""
        if not self.replacements:
            return None
        return rounded(max(r.seconds if r.low is None else r.low for r in self.replacements),
                       max(r.seconds for r in self.replacements))

    def evidence(self) -> str:
        if not self.replacements:
            return "not measured: no pod of a selected workload was evicted or deleted after injection"
        parts = []
        per: dict[str, list[Replacement]] = {}
        for r in self.replacements:
            per.setdefault(r.old.workload, []).append(r)
        for workload, rs in sorted(per.items()):
            xs = [r.seconds for r in rs]
            worst = max(rs, key=lambda r: r.seconds)
            missing = sum(not r.ready for r in rs)
            parts.append(f"{workload}: {len(rs)} pods, p50 {percentile(xs, 50):.2f} s, p95 {percentile(xs, 95):.2f} s, "
                         f"max {max(xs):.2f} s ({worst.old.pod} {worst.how} at {_ts(worst.removed)}"
                         + (f" → {worst.new.pod} Ready on {worst.new.node} at {_ts(worst.new.ready_at)})"
                            if worst.new is not None and worst.new.ready_at is not None
                            else "; no replacement Ready by the end)")
                         + (f"; {missing} never replaced by a Ready pod" if missing else ""))
        return "; ".join(parts)


def rescheduling(tl: Timeline, start: float) -> Rescheduling:
    """Each pod of a selected workload removed at or after `start`, matched in order of removal with the
    earliest new pod of the same workload first seen after it (less `TOLERANCE`). A pod was removed no
    later than the first sign of it: the fault's eviction event (recorded when the API answered, which on
    a busy machine can be after the probe has already seen the pod go) or the probe seeing it deleting or
    gone, whichever came first."""
    tracks = pods(tl)
    if not tracks:
        return Rescheduling()
    evicted: dict[str, tuple[float, str]] = {}
    for e in tl.events_of("eviction"):
        uid = str(e.detail.get("uid"))
        if e.detail.get("outcome") in REMOVED and uid in tracks and e.t >= start and uid not in evicted:
            evicted[uid] = (e.t, str(e.detail["outcome"]))
    removals: dict[str, tuple[float, str]] = {}
    for uid, tr in tracks.items():
        seen = [(t, how) for t, how in ((tr.deleting_at, "seen deleting"), (tr.gone_at, "seen gone"))
                if t is not None and t >= start]
        if uid in evicted:   # named as the fault did it, timed by whichever sign came first
            removals[uid] = (min([evicted[uid][0], *(t for t, _ in seen)]), evicted[uid][1])
        elif seen:
            removals[uid] = min(seen)
    taken: set[str] = set()
    out = []
    end = tl.end
    looks = sorted({s.t for ss in workload_samples(tl).values() for s in ss})
    for uid, (t, how) in sorted(removals.items(), key=lambda kv: kv[1][0]):
        old = tracks[uid]
        new = next((p for p in sorted(tracks.values(), key=lambda p: p.first)
                    # A replacement may itself be removed later (a second node drained): still a replacement.
                    if p.workload == old.workload and p.uid not in taken and p.uid != uid
                    and p.first >= t - TOLERANCE), None)
        if new is not None:
            taken.add(new.uid)
        ready_at = new.ready_at if new is not None else None
        seconds = (ready_at if ready_at is not None else end) - t
        low = None if ready_at is None else max(0.0, previous_instant(looks, ready_at, t) - t)
        out.append(Replacement(old, t, how, new, round(max(0.0, seconds), 4), low))
    return Rescheduling(out)


# ---- workloadUnavailable ------------------------------------------------------------------------------------
def unavailable(tl: Timeline, start: float, end: float) -> tuple[float | None, str]:
    """Total seconds at or after `start` in which any selected workload had fewer ready replicas (its
    status.readyReplicas) than desired (spec.replicas)."""
    per = workload_samples(tl)
    if not per:
        return None, "not measured: no workloads samples (add the workloads probe)"
    short: dict[str, list[Interval]] = {}
    for name, samples in per.items():
        below = [(max(a, start), min(b, end)) for a, b in
                 spans(samples, end, lambda s: int(s.values.get("ready") or 0) < int(s.values.get("desired") or 0))]
        if below := [(a, b) for a, b in below if b > a]:
            short[name] = below
    union = merge([iv for ivs in short.values() for iv in ivs])
    total = round(sum(b - a for a, b in union), 4)
    if not short:
        return total, f"all {len(per)} workloads had every desired replica ready from {_ts(start)} to {_ts(end)}"
    parts = []
    for name, ivs in sorted(short.items()):
        low = min((s for s in per[name] if s.t >= start or any(a <= s.t < b for a, b in ivs)),
                  key=lambda s: int(s.values.get("ready") or 0))
        parts.append(f"{name} short for {sum(b - a for a, b in ivs):.2f} s from {_ts(ivs[0][0])} "
                     f"(lowest {low.values.get('ready')}/{low.values.get('desired')} ready at {_ts(low.t)})")
    return total, f"{total:.2f} s with a workload short of ready replicas: " + "; ".join(parts)


# ---- pdbViolations ------------------------------------------------------------------------------------------
def pdb_violations(tl: Timeline, start: float, end: float) -> tuple[float | None, str]:
    """Moments (maximal intervals) beginning at or after `start` in which a PDB's healthy pods, counted by
    the probe from the same pod list, fell below what the budget requires."""
    per = _by_subject(tl, "pdb/")
    judged = {name: [s for s in ss if s.values.get("required") is not None] for name, ss in per.items()}
    judged = {name: ss for name, ss in judged.items() if ss}
    if not judged:
        return None, "not measured: no PodDisruptionBudget covering a selected workload was sampled"
    found: list[str] = []
    already: list[str] = []
    count = 0
    for name, samples in sorted(judged.items()):
        for a, b in spans(samples, end, lambda s: int(s.values["healthy"]) < int(s.values["required"])):
            worst = min((s for s in samples if a <= s.t < b), key=lambda s: int(s.values["healthy"]))
            what = (f"{name} {worst.values['healthy']} healthy < {worst.values['required']} required "
                    f"at {_ts(worst.t)} ({_ts(a)}–{b:.2f} s)")
            if a >= start:
                count += 1
                found.append(what)
            elif b > start:
                already.append(what)
    note = f"; already short at injection, not counted: {'; '.join(already)}" if already else ""
    if not found:
        return 0.0, f"{len(judged)} budgets held: healthy pods never fell below the required count after {_ts(start)}{note}"
    return float(count), f"{count} violations: {'; '.join(found[:5])}" + (" …" if len(found) > 5 else "") + note


# ---- drains -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Drain:
    """One node's drain, from the `drain-node` fault's events."""

    node: str
    cordoned: float | None
    finished: float | None
    seconds: float | None
    """cordon → drain event (the node's last pod gone, or the timeout)."""
    complete: bool
    outcomes: dict[str, int]
    """Final outcome of each pod → count (skipped, evicted, deleted, gone, blocked, failed)."""
    reasons: dict[str, list[str]]
    """skipped / blocked / failed → the distinct reasons given."""
    refusals: int
    """PDB refusals (429) seen before evictions went through."""
    api: str = ""


def drains(tl: Timeline) -> list[Drain]:
    cordons = {str(e.detail.get("node")): e.t for e in sorted(tl.events_of("cordon"), key=lambda e: e.t)}
    per_node: dict[str, list[Event]] = {}
    for e in tl.events_of("eviction"):
        per_node.setdefault(str(e.detail.get("node")), []).append(e)
    done = {str(e.detail.get("node")): e for e in tl.events_of("drain")}
    out = []
    for node in sorted({*cordons, *done}):
        final: dict[str, Event] = {}
        refusals = 0
        for e in sorted(per_node.get(node, []), key=lambda e: e.t):
            outcome = e.detail.get("outcome")
            if outcome == "refused":
                refusals += 1
            elif outcome != "terminated":
                final[str(e.detail.get("uid") or e.detail.get("pod"))] = e
        outcomes: dict[str, int] = {}
        reasons: dict[str, list[str]] = {}
        for e in final.values():
            outcome = str(e.detail.get("outcome"))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome in ("skipped", "blocked", "failed") and e.detail.get("reason"):
                bucket = reasons.setdefault(outcome, [])
                if str(e.detail["reason"]) not in bucket:
                    bucket.append(str(e.detail["reason"]))
        d = done.get(node)
        c = cordons.get(node)
        seconds = round(d.t - c, 4) if d is not None and c is not None else None
        out.append(Drain(node, c, d.t if d else None, seconds, bool(d and d.detail.get("complete")), outcomes,
                         reasons, refusals, str(d.detail.get("api", "")) if d else ""))
    return out


def describe_drain(d: Drain) -> str:
    counts = ", ".join(f"{n} {o}" for o, n in sorted(d.outcomes.items())) or "no pods"
    took = (f"drained in {d.seconds:.2f} s" if d.seconds is not None and d.complete
            else f"incomplete after {d.seconds:.2f} s" if d.seconds is not None else "never finished")
    return f"node {d.node}: {took} ({counts}" + (f"; {d.refusals} PDB refusals retried" if d.refusals else "") + ")"


def drain_duration(tl: Timeline) -> tuple[float | None, str]:
    """The longest cordon → drain-finished time over the drained nodes."""
    ds = drains(tl)
    if not ds:
        return None, "not measured: no drain in this run"
    timed = [d for d in ds if d.seconds is not None]
    text = "; ".join(describe_drain(d) for d in ds)
    if not timed:
        return None, f"not measured: {text}"
    return max(d.seconds for d in timed if d.seconds is not None), text
