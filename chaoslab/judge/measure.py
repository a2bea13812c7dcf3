"""Measurements: what one finished run's timeline says about the control plane. Every SLO metric in
`chaoslab.spec.model.METRICS`, the recovery split into phases that add up to it, a sentence of evidence
with timestamps per metric, and the intervals in which the steady state held (for the chart).

Pure functions over a `Timeline`: the run session calls `measure` after each run, `chaoslab report`
(`chaoslab.reports.rebuild`) calls it again on the saved timelines. Condition truth is the one in
`chaoslab.judge.conditions`, computed here as intervals in one sweep per condition instead of one query per
instant. The definitions, with a worked example, are in docs/measurements.md.

    >>> m = measure(timeline, ("apiserver-ready", "scheduler-leader"), settle=5.0)   # doctest: +SKIP
    >>> m.values["recoveryTime"], [p.seconds for p in m.phases]                       # doctest: +SKIP
    (17.2, [0.0, 17.0, 0.0, 0.2])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from chaoslab.judge import consistency, disruption, groundtruth
from chaoslab.judge.brackets import interval_bracket, previous_instant, rounded, span_bracket
from chaoslab.judge.conditions import (
    RENEWAL_WINDOW,
    Interval,
    Samples,
    etcd_reachable,
    false_intervals,
)
from chaoslab.judge.steady import (
    EPSILON,
    intervals,
    intervals_at,
    judged_end,
    recovery,
    steady_intervals,
)
from chaoslab.judge.storage import measure_storage
from chaoslab.spec.model import METRICS
from chaoslab.timeline import EFFECT_EVENTS, Sample, Timeline

#: The milestone each phase ends with; phase i runs from milestone i-1 (phase 0: the injection) to it.
PHASES = ("leader lost", "new leader elected", "API writable again", "steady state restored")

#: Lease name → metric prefix, for the two leader-elected components.
LEASE_METRICS = {"kube-scheduler": "scheduler", "kube-controller-manager": "controllerManager"}



@dataclass(frozen=True)
class Phase:
    """One stretch of the recovery: from the previous milestone (or the injection) to `name`."""

    name: str
    start: float
    end: float
    seconds: float
    reached: bool
    """False when the milestone did not happen (the phase then has zero length, or for the last phase
    runs to the end of the timeline)."""
    evidence: str


@dataclass(frozen=True)
class Measurements:
    """One run, measured. `values[metric]` is None when the run cannot tell (no samples of that kind,
    recovery never reached, no leader change)."""

    values: dict[str, float | None]
    phases: list[Phase]
    evidence: dict[str, str]
    steady_state_intervals: list[Interval]
    """Where every steady-state condition held at once, [start, end) in seconds."""
    inject: float | None
    revert: float | None
    recovered: float | None
    end: float
    renewal_window: float
    """The Lease renewal window the `*-leader` conditions were judged with (kept to rebuild reports)."""
    brackets: dict[str, tuple[float, float]] = field(default_factory=dict)
    """metric → (low, high): where the true value lies, from the samples around each transition
    (`chaoslab.judge.brackets`). A measured metric without an entry is exact (a count, a ratio)."""
    truth: dict[str, float] = field(default_factory=dict)
    """metric → its value by the components' own records (`chaoslab.judge.groundtruth`), where the run has
    them (the `records` probe)."""
    disagreements: list[str] = field(default_factory=list)
    """Metrics whose measured figure disagrees with the records beyond its bracket (or a count that
    differs): each a sentence, also in that metric's evidence."""


# ---- intervals ----------------------------------------------------------------------------------------
def _ts(t: float) -> str:
    return f"t={t:.2f} s"


def _clip(intervals: list[Interval], lo: float, hi: float) -> list[Interval]:
    return [(max(a, lo), min(b, hi)) for a, b in intervals if min(b, hi) > max(a, lo)]


def _total(intervals: list[Interval]) -> float:
    return sum(b - a for a, b in intervals)


def _describe(intervals: list[Interval], what: str, limit: int = 3) -> str:
    parts = [f"{_ts(a)}–{b:.2f} s ({b - a:.2f} s)" for a, b in intervals[:limit]]
    more = f" and {len(intervals) - limit} more" if len(intervals) > limit else ""
    return f"{what} {', '.join(parts)}{more}"


# ---- leaders ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Leadership:
    elections: float | None
    new_at: float | None
    lost_at: float | None
    evidence_elections: str
    evidence_new: str
    evidence_lost: str
    new_bracket: tuple[float, float] | None = None
    """When the new leader was truly elected lies in [low, high] (timeline seconds): after the last sample
    that showed the old state, no later than the first that showed the new one (plus its round trip)."""


def _rtt(s: Sample) -> float:
    """The round trip of the request behind a sample (0 when the probe did not record one)."""
    return float(s.values.get("rtt") or 0.0)


#: Faults whose targets are, while they hold, dead or cut off from their peers.
CUTTING_FAULTS = ("kill-process", "partition")


def took_effect(timeline: Timeline, inject: float) -> tuple[float, float]:
    """When the fault injected at `inject` took effect, as (no earlier than, at): a kill-process signal
    lands between its `signalling` and `process-signalled` events, a partition between `rules-installing`
    and `rules-installed`, which can be seconds after the `inject` event (over ssh: the lookup of the
    process, the dead-man's switch, the rules per host); any other fault at `inject`."""
    kinds = {"inject", "revert", *EFFECT_EVENTS, *EFFECT_EVENTS.values()}
    later = [e for e in timeline.events if e.t >= inject and e.kind in kinds]
    for before, after in itertools.pairwise(later):
        if before.kind in ("inject", "revert") and before.t > inject:
            break
        if EFFECT_EVENTS.get(before.kind) == after.kind:
            return before.t, after.t
    return inject, inject


def _cut_members(timeline: Timeline, end: float) -> dict[str, list[Interval]]:
    """etcd member → where a fault had it killed or cut off (from when it took effect to its revert, or the
    end)."""
    reverts = {(e.detail.get("fault"), e.detail.get("index")): e.t for e in timeline.events_of("revert")}
    out: dict[str, list[Interval]] = {}
    for e in timeline.events_of("inject"):
        if e.detail.get("fault") not in CUTTING_FAULTS or e.detail.get("component") != "etcd":
            continue
        stop = reverts.get((e.detail.get("fault"), e.detail.get("index")), end)
        start = took_effect(timeline, e.t)[1]
        for target in e.detail.get("targets", []):
            component, _, member = str(target).partition("@")
            if component == "etcd" and member:
                out.setdefault(member, []).append((start, stop))
    return out


def etcd_working_leader(index: Samples, t: float, cut: dict[str, list[Interval]]) -> bool:
    """At t some reachable member names a leader that is itself reachable, names itself, and is not
    killed or cut off by a fault: a leader that can lead. Followers keep naming a dead leader until their
    election timeout; that time counts as without a leader."""
    _, reachable = etcd_reachable(index, t)
    for name in {v.values.get("leader") for v in reachable} - {None}:
        own = index.latest("etcd", str(name), t)
        if own is None or not own.values.get("reachable") or own.values.get("leader") != name:
            continue
        if any(a <= t < b for a, b in cut.get(str(name), [])):
            continue
        return True
    return False


def _etcd(index: Samples, inject: float, end: float) -> tuple[_Leadership, list[Interval], list[tuple[float, str]]]:
    """Elections (term increases with a leader named), the new leader, when the old one was lost, where no
    reachable member named a leader, and each election as (time, what changed)."""
    samples = index.timeline.samples_of("etcd")
    no_leader = intervals(index, end, lambda t: -math.inf if any(
        v.values.get("leader") for v in etcd_reachable(index, t)[1]) else math.inf)
    new_bracket: tuple[float, float] | None = None

    def named(s: Sample) -> bool:
        return bool(s.values.get("reachable") and s.values.get("leader") and s.values.get("term") is not None)

    before = [s for s in samples if s.t <= inject and named(s)]
    base = max(before, key=lambda s: (int(s.values["term"]), s.t)) if before else None
    base_leader = base.values["leader"] if base else None
    term: int | None = int(base.values["term"]) if base else None
    leader = base_leader
    changes: list[str] = []
    elected: list[tuple[float, str]] = []
    new_at: float | None = None
    seen_before = any(s.t <= inject for s in samples)
    for s in samples:
        if s.t <= inject or not named(s):
            continue
        t_new = int(s.values["term"])
        # Count an election only against a known earlier leader; a term that jumps by 2 (one failed
        # election, then a successful one) is still one new leader.
        if term is None or t_new > term:
            if term is not None or seen_before:
                changes.append(f"{leader or 'none'} → {s.values['leader']} at {_ts(s.t)} (term {term} → {t_new})")
                elected.append((s.t, changes[-1]))
                if new_at is None:
                    first = _first_named(samples, s, inject, base)
                    new_bracket = _elected_bracket(index, first, inject, base)
                    # A sample is stamped when its request was sent; one answered late (a member busy for
                    # 1 s) may name the new leader with a time before the samples prove it was elected.
                    new_at = max(first.t, new_bracket[0])
            term, leader = t_new, s.values["leader"]
    was = f"{base_leader}, term {base.values['term']}" if base else "no leader seen before"
    if changes:
        ev_el = f"etcd leader {'; '.join(changes)}"
        ev_new = f"inject at {_ts(inject)}; {changes[0]}"
    else:
        ev_el = f"no etcd leader change after inject at {_ts(inject)} ({was} throughout)"
        ev_new = f"the etcd leader never changed after inject at {_ts(inject)} ({was})"

    old = str(base_leader) if base_leader else None
    lost_at = next((t for t in index.instants if t >= inject and _etcd_leader_lost(index, old, t)), None)
    ev_lost = (f"etcd first without an agreed, reachable leader at {_ts(lost_at)}" if lost_at is not None
               else f"the etcd leader ({was}) was never lost")
    count = float(len(changes)) if samples else None
    return _Leadership(count, new_at, lost_at, ev_el, ev_new, ev_lost, new_bracket), no_leader, elected


def _first_named(samples: Sequence[Sample], counted: Sample, inject: float, base: Sample | None) -> Sample:
    """The first sample after the injection that shows the election `counted` (the first sample of a
    higher term) shows. etcd's Status reports the leader as soon as the member knows it, but the term of
    the last entry it applied, which follows one round trip later: a new leader named with the old term
    already shows the election. So: the first sample naming the new leader, when it is another member
    than the old one, in a term at least the old leader's."""
    leader = counted.values["leader"]
    if base is None or leader == base.values["leader"]:
        return counted  # re-elected: only the term tells
    floor = int(base.values["term"])
    return next((s for s in samples if inject < s.t <= counted.t and s.values.get("reachable")
                 and s.values.get("leader") == leader and int(s.values.get("term") or 0) >= floor), counted)


def _elected_bracket(index: Samples, first: Sample, inject: float, base: Sample | None) -> tuple[float, float]:
    """Where the election that `first` shows truly happened: no later than the earliest answer naming the
    new leader, and after the new leader's own last answer that did not name itself (only the new leader
    knows the moment it is elected; a follower may learn it late). No such answer: after the injection."""
    leader = str(first.values["leader"])
    floor = int(base.values["term"]) if base is not None else 0
    # Any answer naming the new leader proves it by its arrival; the earliest arrival counts.
    high = min((s.t + _rtt(s) for s in index.timeline.samples_of("etcd") if s.t >= first.t
                and s.values.get("reachable") and s.values.get("leader") == leader
                and int(s.values.get("term") or 0) >= floor), default=first.t + _rtt(first))
    low = inject
    for own in index.series("etcd", leader):
        if own.t >= high:
            break
        v = own.values
        if not v.get("reachable") or own.t <= inject:
            continue  # an unanswered request says nothing about the member's state
        if v.get("leader") == leader and (first.values.get("leader") != (base.values["leader"] if base else None)
                                          or int(v.get("term") or 0) >= int(first.values["term"])):
            break
        low = max(low, own.t)
    return low, high


def _etcd_leader_lost(index: Samples, old: str | None, t: float) -> bool:
    """At t, the reachable members do not agree on one leader, or the old leader is unreachable."""
    _, reachable = etcd_reachable(index, t)
    leaders = {v.values.get("leader") for v in reachable}
    view = index.latest("etcd", old, t) if old else None
    return len(leaders) != 1 or None in leaders or (view is not None and not view.values.get("reachable"))


def _short(identity: object) -> str:
    text = str(identity)
    return text if len(text) <= 16 else text[:16] + "…"


def _lease(timeline: Timeline, name: str, inject: float, targets: Sequence[str]) -> _Leadership | None:
    """Holder identity changes of a Lease (a restarted process on the same host is a new identity)."""
    samples = timeline.samples_of("lease", name)
    if not samples:
        return None
    before = [s for s in samples if s.t <= inject]
    held = [s for s in before if s.values.get("identity")]
    base = held[-1].values["identity"] if held else None
    host = held[-1].values.get("holder") if held else None
    last, changes, new_at = base, [], None
    new_bracket: tuple[float, float] | None = None
    for s in samples:
        ident = s.values.get("identity")
        if s.t <= inject or not ident or ident == last:
            continue
        # Without any sample before injection the first holder seen is the baseline, not an election.
        if before:
            changes.append(f"{_short(last) if last else 'no holder'} → {_short(ident)} at {_ts(s.t)}")
            if new_at is None:
                new_at = s.t
                # A watch event shows a change late and an old state that may already be gone; only a read
                # (`via: list`, a quorum read) proves the old holder still held the Lease when it was sent.
                reads = [r.t for r in samples if inject <= r.t < s.t and r.values.get("via") == "list"
                         and r.values.get("identity") != ident]
                # A slow read may show the new holder after the watch did: the earliest arrival counts.
                seen = min(r.t + _rtt(r) for r in samples if r.t >= s.t and r.values.get("identity") == ident)
                new_bracket = (max(reads, default=inject), seen)
        last = ident
    was = f"{_short(base)}" if base else "not held"
    ev_el = (f"{name} Lease holder {'; '.join(changes)}" if changes
             else f"no {name} Lease holder change after inject at {_ts(inject)} ({was} throughout)")
    ev_new = (f"inject at {_ts(inject)}; new {name} holder {changes[0]}" if changes
              else f"the {name} Lease holder never changed after inject at {_ts(inject)} ({was})")
    if base is None:
        lost_at: float | None = inject
        ev_lost = f"the {name} Lease was not held at inject ({_ts(inject)})"
    elif f"{name}@{host}" in targets:
        lost_at = inject
        ev_lost = f"the fault hit the {name} holder {host} at inject ({_ts(inject)})"
    else:
        gone = next((s for s in samples if s.t >= inject and s.values.get("identity") != base), None)
        lost_at = gone.t if gone else None
        ev_lost = (f"{name} holder {_short(base)} gone at {_ts(gone.t)}" if gone
                   else f"the {name} holder {_short(base)} was never lost")
    return _Leadership(float(len(changes)), new_at, lost_at, ev_el, ev_new, ev_lost, new_bracket)


# ---- the measurement ----------------------------------------------------------------------------------------
def measure(timeline: Timeline, steady_state: Sequence[str], settle: float,
            renewal_window: float = RENEWAL_WINDOW) -> Measurements:
    """Measure one finished run. `renewal_window` is the target's (seconds without an observed Lease
    renewal after which a holder counts as gone, see `chaoslab.judge.conditions`)."""
    # Judge exactly what was saved (times rounded to 0.1 ms), so `chaoslab report` on the saved file
    # reproduces the in-memory result to the byte.
    tl = Timeline.from_records(timeline.records())
    end = tl.end
    values: dict[str, float | None] = dict.fromkeys(METRICS)
    evidence: dict[str, str] = {}
    brackets: dict[str, tuple[float, float]] = {}
    index = Samples(tl)
    # The steady state is judged up to the instant the runner decided the run was over (`judged_end`):
    # the same intervals and the same rule as its decision, whatever arrived after it.
    judged = judged_end(tl)
    per_condition, ok = steady_intervals(index, steady_state, judged, renewal_window)
    injects, reverts = tl.events_of("inject"), tl.events_of("revert")
    # Times count from when the first fault took effect; `effect_low` is the earliest it can have (the far
    # end of a time's bracket).
    began = min((e.t for e in injects), default=None)
    effect_low, inject = took_effect(tl, began) if began is not None else (0.0, None)
    revert = max((e.t for e in reverts), default=None)
    start = inject if inject is not None else 0.0

    # Availability: counted from injection on (the steady state was required before it).
    for metric, probe, subject, key, what in (
            ("apiserverUnavailable", "apiserver", "lb", "ready", "load-balanced apiserver not ready"),
            ("apiWriteUnavailable", "canary", "write", "ok", "canary writes failing"),
            ("etcdWriteUnavailable", "writes", "put", "ok", "workload etcd writes failing")):
        samples = tl.samples_of(probe, subject)
        if not samples:
            evidence[metric] = f"not measured: no {probe}/{subject} samples"
            continue
        down = _clip(false_intervals(samples, key, end), start, end)
        values[metric] = round(_total(down), 4)
        brackets[metric] = span_bracket([(s.t, not s.values.get(key)) for s in samples], start, end)
        evidence[metric] = (_describe(down, what) if down else
                            f"{what} never, {_ts(start)}–{end:.2f} s ({len(samples)} samples)")
    values["schedulingLatency"], evidence["schedulingLatency"], scheduled = _scheduling(tl, start)
    if scheduled is not None:
        brackets["schedulingLatency"] = scheduled
    _data_safety(tl, start, values, evidence)
    _api_consistency(tl, start, values, evidence)
    _workloads(tl, start, end, values, evidence, brackets)
    _admission(tl, start, revert if revert is not None else end, values, evidence)
    if inject is not None:
        _apf(tl, inject, revert if revert is not None else end, values, evidence)
        _node_lease_gap(tl, inject, revert if revert is not None else end, values, evidence)
    measure_storage(tl, inject, revert, end, values, evidence)
    _oom_kills(tl, values, evidence)

    if inject is None:
        for metric in METRICS:
            evidence.setdefault(metric, "not measured: no fault was injected in this run")
        return Measurements(values, [], evidence, ok, None, revert, None, end, renewal_window,
                            _measured_only(brackets, values))

    # Recovery.
    recovered, failed = recovery(ok, inject, settle, judged)
    if failed is None:
        evidence["recoveryTime"] = (f"steady state held throughout, from inject at {_ts(inject)} to the end "
                                    f"at {_ts(judged)}")
    else:
        broken = sorted(c for c, ivs in per_condition.items() if not any(a <= failed < b for a, b in ivs))
        lead = f"inject at {_ts(inject)}; steady state broken at {_ts(failed)} ({', '.join(broken) or '?'})"
        if recovered is None:
            still = sorted(c for c, ivs in per_condition.items() if not any(a <= judged - EPSILON < b for a, b in ivs))
            evidence["recoveryTime"] = (f"{lead}; never held for the {settle:g} s settle period before the "
                                        f"end at {_ts(judged)} (failing at the end: {', '.join(still) or 'none'})")
        else:
            evidence["recoveryTime"] = (f"{lead}; holds from {_ts(recovered)} for the {settle:g} s settle "
                                        f"period → {recovered - inject:.2f} s")
    if recovered is not None:
        values["recoveryTime"] = round(recovered - inject, 4)
        since = _recovered_after(index, per_condition, recovered, inject)
        brackets["recoveryTime"] = rounded(since - inject, recovered - effect_low)
    _cert_expiry(tl, ok, per_condition, judged, revert, settle, values, evidence)
    if revert is None:
        evidence["recoveryAfterRevert"] = "not measured: no revert in this run"
    elif recovered is None:
        evidence["recoveryAfterRevert"] = f"revert at {_ts(revert)}; the steady state never came back"
    else:
        values["recoveryAfterRevert"] = round(max(0.0, recovered - revert), 4)
        since = _recovered_after(index, per_condition, recovered, inject)
        brackets["recoveryAfterRevert"] = rounded(max(0.0, since - revert), max(0.0, recovered - revert))
        evidence["recoveryAfterRevert"] = (f"revert at {_ts(revert)}; recovered at {_ts(recovered)}"
                                           + (" (before the revert)" if recovered < revert else ""))

    # Leaders.
    leaders: dict[str, _Leadership | None] = {}
    if tl.samples_of("etcd"):
        etcd, no_leader, elected = _etcd(index, inject, end)
        leaders["etcd"] = etcd
        values["etcdLeaderElections"] = etcd.elections
        evidence["etcdLeaderElections"] = etcd.evidence_elections
        if etcd.new_at is not None:
            values["etcdTimeToNewLeader"] = round(etcd.new_at - inject, 4)
        evidence["etcdTimeToNewLeader"] = etcd.evidence_new
        if revert is not None:
            rejoin = [text for t, text in elected if t >= revert]
            values["etcdRejoinElections"] = float(len(rejoin))
            evidence["etcdRejoinElections"] = (f"after revert at {_ts(revert)}: {'; '.join(rejoin)}" if rejoin else
                                               f"no etcd election after revert at {_ts(revert)}")
        if etcd.new_bracket is not None:
            brackets["etcdTimeToNewLeader"] = rounded(etcd.new_bracket[0] - inject,
                                                            etcd.new_bracket[1] - effect_low)
        etcd_times = [s.t for s in tl.samples_of("etcd")]
        unnamed = _clip(no_leader, inject, end)
        values["etcdTimeWithoutNamedLeader"] = round(_total(unnamed), 4)
        brackets["etcdTimeWithoutNamedLeader"] = interval_bracket(unnamed, etcd_times, end, (inject,))
        evidence["etcdTimeWithoutNamedLeader"] = (_describe(unnamed, "no reachable member named a leader")
                                                  if unnamed else f"a reachable member named a leader throughout "
                                                  f"{_ts(inject)}–{end:.2f} s")
        cut = _cut_members(tl, end)
        edges = sorted({t for ivs in cut.values() for iv in ivs for t in iv})
        leaderless = _clip(intervals_at(sorted({*etcd_times, *edges}), end, lambda t: (
            -math.inf if etcd_working_leader(index, t, cut) else math.inf)), inject, end)
        values["etcdTimeWithoutLeader"] = round(_total(leaderless), 4)
        brackets["etcdTimeWithoutLeader"] = interval_bracket(leaderless, etcd_times, end, (inject, *edges))
        evidence["etcdTimeWithoutLeader"] = (
            _describe(leaderless, "no working etcd leader (none named, or the named one dead, cut off or "
                      "not leading)") if leaderless else
            f"a working etcd leader throughout {_ts(inject)}–{end:.2f} s")
    targets = [str(t) for e in injects for t in e.detail.get("targets", [])]
    for lease, prefix in LEASE_METRICS.items():
        got = _lease(tl, lease, inject, targets)
        leaders[lease] = got
        if got is None:
            continue
        values[f"{prefix}LeaderElections"] = got.elections
        evidence[f"{prefix}LeaderElections"] = got.evidence_elections
        if got.new_at is not None:
            values[f"{prefix}TimeToNewLeader"] = round(got.new_at - inject, 4)
        if got.new_bracket is not None:
            brackets[f"{prefix}TimeToNewLeader"] = rounded(got.new_bracket[0] - inject,
                                                                   got.new_bracket[1] - effect_low)
        evidence[f"{prefix}TimeToNewLeader"] = got.evidence_new
    for metric in METRICS:
        evidence.setdefault(metric, "not measured: no samples of this kind")

    first = min(injects, key=lambda e: e.t)
    component = str(first.detail.get("component", ""))
    phases = _phases(tl, inject, recovered, end, component, leaders.get(component))
    truth: dict[str, float] = {}
    disagreements: list[str] = []
    for t in groundtruth.compare(tl, inject, end, values, brackets):
        truth[t.metric] = t.truth
        sentence = t.sentence(METRICS[t.metric])
        evidence[t.metric] = f"{evidence.get(t.metric, '')}; {sentence}"
        if not t.agrees:
            disagreements.append(f"{t.metric}: {sentence}")
    return Measurements(values, phases, evidence, ok, inject, revert, recovered, end, renewal_window,
                        _measured_only(brackets, values), truth, disagreements)


def _measured_only(brackets: dict[str, tuple[float, float]],
                   values: dict[str, float | None]) -> dict[str, tuple[float, float]]:
    return {m: b for m, b in sorted(brackets.items()) if values.get(m) is not None}


#: The samples each steady-state condition is judged from: where its changes are seen.
CONDITION_SERIES = {"apiserver-ready": ("apiserver", "lb"), "all-apiservers-ready": ("apiserver", None),
                    "etcd-leader": ("etcd", None), "etcd-quorum": ("etcd", None),
                    "scheduler-leader": ("lease", "kube-scheduler"),
                    "controller-manager-leader": ("lease", "kube-controller-manager"),
                    "scheduling": ("canary", "scheduling")}


def _recovered_after(index: Samples, per_condition: dict[str, list[Interval]], recovered: float,
                     floor: float) -> float:
    """The lower edge of the recovery's bracket: the steady state came back at `recovered`, the instant
    the last condition was seen holding again; it truly came back after that condition's previous sample
    (the last one that showed it broken)."""
    low = floor
    for condition, held in per_condition.items():
        if not any(a == recovered for a, _ in held):
            continue
        probe, subject = CONDITION_SERIES.get(condition, ("", None))
        low = max(low, previous_instant(index.times(probe, subject), recovered, floor))
    return min(low, recovered)


def _data_safety(tl: Timeline, start: float, values: dict[str, float | None], evidence: dict[str, str]) -> None:
    """lostWrites, failedWrites and staleReads from the write workload (`chaoslab.probes.writes`)."""
    puts = tl.samples_of("writes", "put")
    if not puts:
        return
    failed = [s for s in puts if s.t >= start and not s.values.get("ok")]
    values["failedWrites"] = float(len(failed))
    timeouts = sum(s.values.get("error") in ("DEADLINE_EXCEEDED", "ConnectionTimeoutError") for s in failed)
    acked = sum(bool(s.values.get("ok")) for s in puts)
    evidence["failedWrites"] = (f"{len(failed)} of {sum(s.t >= start for s in puts)} writes after {_ts(start)} "
                                f"failed ({timeouts} timed out)" + (f", first at {_ts(failed[0].t)}, last at "
                                                                    f"{_ts(failed[-1].t)}" if failed else ""))
    verify = tl.samples_of("writes", "verify")
    if not verify or verify[-1].values.get("lost") is None:
        why = verify[-1].values.get("error") if verify else "the workload never verified"
        evidence["lostWrites"] = f"not measured: {acked} writes acknowledged, read-back failed ({why})"
    else:
        v = verify[-1].values
        values["lostWrites"] = float(v["lost"])
        keys = ", ".join(v.get("lost_keys") or [])
        evidence["lostWrites"] = (f"{v['lost']} of {v['acked']} acknowledged writes missing or changed at "
                                  f"read-back ({_ts(verify[-1].t)})" + (f": {keys}" if keys else ""))
    reads = [s for p in {s.subject for s in tl.samples_of("writes")} if p.startswith("read-")
             for s in tl.samples_of("writes", p) if s.values.get("ok")]
    stale = sorted((s for s in reads if s.values.get("stale")), key=lambda s: s.t)
    values["staleReads"] = float(len(stale))
    evidence["staleReads"] = (f"{len(stale)} of {len(reads)} serializable reads stale" + (
        f"; first: {stale[0].subject[5:]} returned {stale[0].values['value']} at {_ts(stale[0].t)} after "
        f"{stale[0].values['acked']} was acknowledged" if stale else ""))


def _api_consistency(tl: Timeline, start: float, values: dict[str, float | None],
                     evidence: dict[str, str]) -> None:
    """resourceVersionRegressions, watchGaps, watchRelists and the API error rates from the
    `kube-sequence` probe (`chaoslab.judge.consistency` has the definitions)."""
    updates = tl.samples_of(consistency.PROBE, "update")
    reads = consistency.reads_of(tl)
    if not updates and not reads:
        return
    for metric, samples, what in (("apiWriteErrorRate", updates, "API updates"),
                                  ("apiReadErrorRate", reads, "API quorum reads")):
        errors = consistency.error_rate(samples, start, what)
        values[metric] = errors.rate
        evidence[metric] = errors.evidence(start)
    checked = consistency.check_reads(reads)
    if checked.reads:
        values["resourceVersionRegressions"] = float(len(checked.regressions))
    evidence["resourceVersionRegressions"] = (checked.evidence if checked.reads
                                              else "not measured: no quorum read succeeded")
    watches = consistency.check_watches(tl)
    if watches is None or not any(w.judged for w in watches.watches):
        evidence["watchGaps"] = evidence["watchRelists"] = "not measured: no watch listed the object"
        return
    values["watchGaps"] = float(watches.gaps)
    values["watchRelists"] = float(watches.relists)
    evidence["watchGaps"] = watches.evidence_gaps
    evidence["watchRelists"] = watches.evidence_relists


def _cert_expiry(tl: Timeline, ok: list[Interval], per_condition: dict[str, list[Interval]], end: float,
                 revert: float | None, settle: float, values: dict[str, float | None],
                 evidence: dict[str, str]) -> None:
    """certExpiryDetection: from the expiry of a certificate `cert-expiry` reissued (its `certificate`
    event) to the first instant the steady state does not hold; certRecoveryTime: from the revert (the
    original back, its users restarted) to the steady state holding for the settle period. Not
    recoveryTime's split: the restart at injection may break the steady state once before the expiry."""
    certs = tl.events_of("certificate")
    if not certs:
        return
    if revert is None:
        evidence["certRecoveryTime"] = "not measured: no revert in this run"
    else:
        back = next((max(a, revert) for a, b in ok if min(b, end) - max(a, revert) >= settle - EPSILON), None)
        if back is None:
            evidence["certRecoveryTime"] = (f"revert at {_ts(revert)}; the steady state never held for the "
                                            f"{settle:g} s settle period after it")
        else:
            values["certRecoveryTime"] = round(back - revert, 4)
            evidence["certRecoveryTime"] = (f"revert at {_ts(revert)}; holds from {_ts(back)} for the {settle:g} s "
                                            f"settle period → {back - revert:.2f} s")
    first = min(certs, key=lambda e: e.t)
    expiry = first.t + float(first.detail.get("expiresIn") or 0.0)
    what = f"{first.detail.get('link')} certificate expired at {_ts(expiry)}"
    broken = next((t for t in [expiry, *(b for a, b in ok if b > expiry)]
                   if t < end and not any(a <= t < b for a, b in ok)), None)
    if broken is None:
        evidence["certExpiryDetection"] = f"{what}; the steady state held from then to the end at {_ts(end)}"
        return
    failing = sorted(c for c, ivs in per_condition.items() if not any(a <= broken < b for a, b in ivs))
    values["certExpiryDetection"] = round(broken - expiry, 4)
    evidence["certExpiryDetection"] = (f"{what}; steady state broken at {_ts(broken)} ({', '.join(failing) or '?'})"
                                       f" → {broken - expiry:.2f} s")


def _oom_kills(tl: Timeline, values: dict[str, float | None], evidence: dict[str, str]) -> None:
    """oomKills: the OOM kills in the memory cgroups `memory-limit` made, as the kernel counted them
    (`memory.oom_control`, read by the revert: its `memory-released` events)."""
    limited = tl.events_of("memory-limit")
    if not limited:
        return
    released = tl.events_of("memory-released")
    unknown = [e for e in released if e.detail.get("oom_kills") is None]
    if len(released) < len(limited) or unknown:
        evidence["oomKills"] = ("not measured: " + "; ".join(
            ["a memory-limit was not released by this run's revert"] * (len(released) < len(limited))
            + [f"{e.detail.get('cgroup')}: " + ("released by the dead-man's switch first" if e.detail.get("gone")
                                                else "the kernel gives no oom_kill count") for e in unknown]))
        return
    kills = [int(e.detail["oom_kills"]) for e in released]
    values["oomKills"] = float(sum(kills))
    evidence["oomKills"] = "; ".join(
        f"{e.detail.get('component')} on {e.detail.get('host')} (pid {e.detail.get('pid')}): {k} OOM kill(s), "
        f"peak {int(e.detail.get('max_usage_bytes') or 0) / 2**20:.0f} MiB charged to the cgroup, "
        f"{e.detail.get('failcnt')} failed charge(s), released at {_ts(e.t)}" for e, k in zip(released, kills))


#: apiserver-metrics latency class → the SLO metric of its p99.
LATENCY_METRICS = {"mutating": "apiMutatingLatencyP99", "read-resource": "apiReadResourceLatencyP99",
                   "read-namespace": "apiReadNamespaceLatencyP99", "read-cluster": "apiReadClusterLatencyP99"}


def histogram_quantile(q: float, buckets: dict[str, float]) -> float | None:
    """Prometheus' `histogram_quantile` over cumulative `buckets` (bound → count, `+Inf` included): linear
    within the bucket the quantile falls in; the highest finite bound when it falls in `+Inf`; None
    without observations.

        >>> histogram_quantile(0.5, {"0.1": 0, "0.2": 10, "+Inf": 10})
        0.15
    """
    bounds = sorted((float(le), n) for le, n in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank, lower, below = q * bounds[-1][1], 0.0, 0.0
    for upper, n in bounds:
        if n >= rank:
            if math.isinf(upper):
                return lower
            return round(lower + (upper - lower) * ((rank - below) / (n - below) if n > below else 1.0), 4)
        lower, below = upper, n
    return lower


def _delta(late: dict[str, float], early: dict[str, float]) -> dict[str, float]:
    """Counter difference per key; a key that went down (a restarted apiserver) counts from zero."""
    return {k: v - early.get(k, 0.0) if v >= early.get(k, 0.0) else v for k, v in late.items()}


def _apf(tl: Timeline, start: float, stop: float, values: dict[str, float | None], evidence: dict[str, str]) -> None:
    """apfRejectedRequests, apfMaxInQueue, apfWaitP99 and the API latency p99s from the `apiserver-metrics`
    probe, over [injection, revert]: counters and histograms as the difference between each apiserver's
    last sample at or before the injection and its last at or before the revert."""
    hosts = sorted({s.subject for s in tl.samples_of("apiserver-metrics")})
    if not hosts:
        return
    rejected: dict[str, float] = {}
    wait: dict[str, float] = {}
    latency: dict[str, dict[str, float]] = {}
    inqueue, measured = 0.0, []
    for host in hosts:
        good = [s for s in tl.samples_of("apiserver-metrics", host) if s.values.get("ok")]
        before = [s for s in good if s.t <= start]
        during = [s for s in good if start < s.t <= stop]
        if not during:
            continue
        measured.append(host)
        first, last = (before[-1].values if before else {}), during[-1].values
        for pl, n in _delta(last.get("rejected", {}), first.get("rejected", {})).items():
            rejected[pl] = rejected.get(pl, 0.0) + n
        for le, n in _delta(last.get("wait", {}), first.get("wait", {})).items():
            wait[le] = wait.get(le, 0.0) + n
        for cls, buckets in last.get("latency", {}).items():
            into = latency.setdefault(cls, {})
            for le, n in _delta(buckets, first.get("latency", {}).get(cls, {})).items():
                into[le] = into.get(le, 0.0) + n
        inqueue = max([inqueue, *(sum(s.values.get("inqueue", {}).values()) for s in during)])
    if not measured:
        return
    span = f"{_ts(start)}–{_ts(stop)} on {', '.join(measured)}"
    values["apfRejectedRequests"] = float(sum(rejected.values()))
    by_level = ", ".join(f"{pl} {n:g}" for pl, n in sorted(rejected.items()) if n)
    evidence["apfRejectedRequests"] = f"{sum(rejected.values()):g} rejected by APF, {span}" + (
        f" ({by_level})" if by_level else "")
    values["apfMaxInQueue"] = inqueue
    evidence["apfMaxInQueue"] = f"at most {inqueue:g} requests waiting in APF queues at a sample, {span}"
    waited = histogram_quantile(0.99, wait)
    values["apfWaitP99"] = waited
    evidence["apfWaitP99"] = (f"p99 {waited:.3f} s in APF queues over {wait.get('+Inf', 0):g} requests, {span}"
                              if waited is not None else f"no request went through APF queues, {span}")
    for cls, metric in LATENCY_METRICS.items():
        buckets = latency.get(cls, {})
        p99 = histogram_quantile(0.99, buckets)
        values[metric] = p99
        evidence[metric] = (f"p99 {p99:.3f} s over {buckets.get('+Inf', 0):g} {cls} requests, {span}"
                            if p99 is not None else f"no {cls} request, {span}")


def _renewal_gap(tl: Timeline, probe: str, names: Sequence[str] | None, start: float,
                 stop: float) -> tuple[float, str, float] | None:
    """(longest gap, Lease, its start) between two successive renewals seen by `probe` of the Leases
    `names` (all it saw: None), from the last renewal before `start` to `stop`, which bound it."""
    worst: tuple[float, str, float] | None = None
    subjects = names if names is not None else sorted({s.subject for s in tl.samples_of(probe)})
    for name in subjects:
        renewals, seen = [], None
        for s in tl.samples_of(probe, name):
            renew = s.values.get("renew")
            if renew and renew != seen:
                renewals.append(s.t)
                seen = renew
        if not renewals:
            continue
        times = [max([t for t in renewals if t <= start], default=start), *(t for t in renewals if start < t <= stop),
                 stop]
        gap, at = max((b - a, a) for a, b in itertools.pairwise(times))
        if worst is None or gap > worst[0]:
            worst = (gap, name, at)
    return worst


def _node_lease_gap(tl: Timeline, start: float, stop: float, values: dict[str, float | None],
                    evidence: dict[str, str]) -> None:
    """nodeLeaseRenewalGap: the longest time between two successive renewals of any node's Lease in
    kube-node-lease seen by the `node-lease` probe from the injection to the revert, the last renewal before
    the injection and the revert itself bounding it."""
    worst = _renewal_gap(tl, "node-lease", None, start, stop)
    if worst is None:
        return
    values["nodeLeaseRenewalGap"] = round(worst[0], 4)
    evidence["nodeLeaseRenewalGap"] = (f"longest time without a renewal: {worst[1]} node Lease, {worst[0]:.2f} s "
                                       f"from {_ts(worst[2])} ({_ts(start)}–{_ts(stop)})")


def _admission(tl: Timeline, start: float, stop: float, values: dict[str, float | None],
               evidence: dict[str, str]) -> None:
    """matched/unmatchedWriteErrorRate and matched/unmatchedWriteLatency (p99) from the `admission` probe:
    the writes sent while the fault held, from its `webhook` event (the configuration exists; the injection
    when there is none) to the revert."""
    hooks = tl.events_of("webhook")
    start = max(start, min(e.t for e in hooks)) if hooks else start
    for subject in ("matched", "unmatched"):
        sent = [s for s in tl.samples_of("admission", subject) if start <= s.t < stop]
        if not sent:
            continue
        failed = [s for s in sent if not s.values.get("ok")]
        latencies = sorted(float(s.values.get("seconds") or 0.0) for s in sent)
        p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
        values[f"{subject}WriteErrorRate"] = round(len(failed) / len(sent), 4)
        values[f"{subject}WriteLatency"] = round(p99, 4)
        first = f"; first error: {failed[0].values.get('error')}" if failed else ""
        evidence[f"{subject}WriteErrorRate"] = (f"{len(failed)} of {len(sent)} {subject} writes failed between "
                                                f"{_ts(start)} and {_ts(stop)}{first}")
        evidence[f"{subject}WriteLatency"] = (f"p99 {p99:.3f} s, max {latencies[-1]:.3f} s, median "
                                              f"{latencies[len(latencies) // 2]:.3f} s over {len(sent)} {subject} "
                                              f"writes between {_ts(start)} and {_ts(stop)}")


def _workloads(tl: Timeline, start: float, end: float, values: dict[str, float | None],
               evidence: dict[str, str], brackets: dict[str, tuple[float, float]]) -> None:
    """reschedulingTime, workloadUnavailable and pdbViolations from the `workloads` probe, drainDuration from
    the drain-node fault's events (`chaoslab.judge.disruption` has the definitions)."""
    moved = disruption.rescheduling(tl, start)
    values["reschedulingTime"], evidence["reschedulingTime"] = moved.value, moved.evidence()
    if (moved_bracket := moved.bracket) is not None:
        brackets["reschedulingTime"] = moved_bracket
    if not disruption.workload_samples(tl) and not tl.samples_of(disruption.PROBE, disruption.POD):
        evidence["reschedulingTime"] = "not measured: no workloads samples (add the workloads probe)"
    values["workloadUnavailable"], evidence["workloadUnavailable"] = disruption.unavailable(tl, start, end)
    values["pdbViolations"], evidence["pdbViolations"] = disruption.pdb_violations(tl, start, end)
    values["drainDuration"], evidence["drainDuration"] = disruption.drain_duration(tl)


def _scheduling(tl: Timeline, start: float) -> tuple[float | None, str, tuple[float, float] | None]:
    """Worst create → bound time of the canary pods pending at or after `start` (a pod never bound counts
    with the longest pending time seen), and its bracket: a pod was bound after the last look that found it
    pending (`pendingAt`, from its create) and before the look that found it bound."""
    pods: dict[str, list[Sample]] = {}
    for s in tl.samples_of("canary", "scheduling"):
        pods.setdefault(str(s.values.get("pod")), []).append(s)
    pods = {p: ss for p, ss in pods.items() if ss[-1].t >= start}
    if not pods:
        return None, "not measured: no scheduling canary pod in the run", None

    def latency(ss: list[Sample]) -> tuple[float, float]:
        bound = [s for s in ss if s.values.get("bound")]
        if not bound:   # never bound: pending for at least the longest time seen, at most until the end
            seen = max(float(s.values.get("seconds", 0)) for s in ss)
            return seen, seen
        v = bound[0].values
        high = float(v.get("seconds", 0))
        return min(high, max(0.0, float(v.get("pendingAt", high)))), high

    worst = max(pods, key=lambda p: latency(pods[p])[1])
    ss = pods[worst]
    bound = any(s.values.get("bound") for s in ss)
    how = "bound after" if bound else "never bound; pending for"
    low = max(latency(p)[0] for p in pods.values())
    high = latency(ss)[1]
    return round(high, 4), (f"worst of {len(pods)} pods: {worst}, created at {_ts(ss[0].t)}, "
                            f"{how} {high:.2f} s"), rounded(low, high)


def _phases(tl: Timeline, inject: float, recovered: float | None, end: float, component: str,
            leader: _Leadership | None) -> list[Phase]:
    """Four phases between five milestones; each milestone is clamped to lie at or after the previous one
    and at or before recovery, so the phases never overlap and add up to recoveryTime."""
    cap = recovered if recovered is not None else end
    raw: list[tuple[float | None, str]] = []
    if leader is None:
        why = (f"{component} has no leader" if component not in ("etcd", *LEASE_METRICS)
               else f"no samples of the {component} leader")
        raw += [(None, f"did not happen: {why}"), (None, f"did not happen: {why}")]
    else:
        raw.append((leader.lost_at, leader.evidence_lost if leader.lost_at is not None
                    else f"did not happen: {leader.evidence_lost}"))
        raw.append((leader.new_at, leader.evidence_new if leader.new_at is not None
                    else f"did not happen: {leader.evidence_new}"))
    writes = tl.samples_of("canary", "write")
    failed = [s for s in writes if inject <= s.t <= cap and not s.values.get("ok")]
    if not writes:
        raw.append((None, "did not happen: no canary write samples"))
    elif not failed:
        raw.append((None, "no canary write failed: the API stayed writable"))
    else:
        # The first ok write may come after recovery (writes need not be a steady-state condition): clamped.
        back = next((s for s in writes if s.t > failed[-1].t and s.values.get("ok")), None)
        raw.append((back.t if back else None, f"last failed write at {_ts(failed[-1].t)}; " + (
            f"first ok write after it at {_ts(back.t)}" if back else "no ok write after it")))
    if recovered is not None:
        raw.append((recovered, f"steady state holds from {_ts(recovered)} for the settle period"))
    else:
        raw.append((None, f"not reached by the end of the run at {_ts(end)}"))

    phases: list[Phase] = []
    previous = inject
    for name, (at, note) in zip(PHASES, raw):
        last = name == PHASES[-1]
        bound = cap if last else min(max(at if at is not None else previous, previous), cap)
        if at is not None and at != bound and not last:
            note += f" (clamped from {_ts(at)} to {_ts(bound)})"
        phases.append(Phase(name, previous, bound, round(bound - previous, 4),
                            at is not None or (last and recovered is not None), note))
        previous = bound
    return phases
