"""Consistency checks over what the `kube-sequence` probe (`chaoslab.probes.kube_sequence`) recorded: pure
functions over timeline samples, called by `chaoslab.judge.measure`. Definitions are in docs/measurements.md.

resourceVersions are compared as integers. Kubernetes calls them opaque, but with etcd3 storage (every
real apiserver) an object's resourceVersion is its etcd mod_revision and a list's is the store revision:
one counter for the whole cluster that only grows. The probe records them as ints.

    >>> check_reads([read(t=1.0, rv=7, floor=9)]).regressions          # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chaoslab.timeline import Sample, Timeline

PROBE = "kube-sequence"


def _ts(t: float) -> str:
    return f"t={t:.2f} s"


def acknowledged(updates: Sequence[Sample]) -> list[tuple[int, int]]:
    """(resourceVersion, counter) of every acknowledged update, by resourceVersion."""
    return sorted((int(s.values["rv"]), int(s.values["counter"])) for s in updates
                  if s.values.get("ok") and s.values.get("rv") is not None)


# ---- monotonic reads ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reads:
    reads: int
    """Successful quorum reads judged."""
    regressions: list[Sample]
    """Reads that returned a resourceVersion lower than their floor."""

    @property
    def evidence(self) -> str:
        if not self.regressions:
            return f"0 of {self.reads} quorum reads went back in resourceVersion"
        first = self.regressions[0]
        v = first.values
        return (f"{len(self.regressions)} of {self.reads} quorum reads went back in resourceVersion; first: "
                f"{first.subject.removeprefix('read-')} returned {v['rv']} (counter {v.get('counter')}) at "
                f"{_ts(first.t)} after {v['floor']} had been seen")


def check_reads(reads: Sequence[Sample]) -> Reads:
    """A read regresses when the resourceVersion it returned is lower than `floor`: the highest one any
    response (read or acknowledged update, from any apiserver) had carried before the read was sent.
    Quorum reads are linearizable, so across apiservers the answers may never go back."""
    ok = [s for s in reads if s.values.get("ok") and s.values.get("rv") is not None]
    bad = [s for s in ok if int(s.values["rv"]) < int(s.values.get("floor") or 0)]
    return Reads(len(ok), sorted(bad, key=lambda s: s.t))


# ---- watches ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Watch:
    subject: str
    delivered: int
    """Update events delivered."""
    gaps: list[tuple[int, int]]
    """(resourceVersion, counter) of acknowledged updates the watch skipped: neither delivered nor covered
    by a relist, though the watch went past them (or stopped short of them at the end)."""
    covered: int
    """Acknowledged updates not delivered because an expired watch relisted past them."""
    relists: list[float]
    """When the watch relisted after a 410 Gone."""
    expiries: list[str]
    """The servers' messages of the 410 Gone answers."""
    judged: bool
    """False when the watch never listed: it saw nothing, so it is not judged."""
    tail: int = 0
    """Of the gaps: acknowledged updates not delivered by the time the probe stopped."""


def check_watch(subject: str, samples: Sequence[Sample], acked: Sequence[tuple[int, int]]) -> Watch:
    """Walk one watch's samples in order, keeping the position it has delivered up to:

    - `list`: the starting position; updates before it are not expected;
    - `event` at rv: acknowledged updates strictly between the position and rv are gaps;
    - `bookmark` at rv: the server promises nothing up to rv is left, so those up to and including rv are;
    - `relist` at rv (after an `expired`): updates up to rv are covered by the relist, not gaps;
    - `end` (the probe stopped, after giving the watch time to catch up): every acknowledged update after
      the position is a gap.
    """
    pos: int | None = None
    gaps: list[tuple[int, int]] = []
    covered = delivered = tail = 0
    relists: list[float] = []
    expiries: list[str] = []

    def between(lo: int, hi: int, closed: bool) -> list[tuple[int, int]]:
        return [a for a in acked if lo < a[0] and (a[0] < hi or (closed and a[0] == hi))]

    for s in sorted(samples, key=lambda s: s.t):
        what, rv = s.values.get("what"), s.values.get("rv")
        if what == "expired":
            expiries.append(str(s.values.get("error") or ""))
            continue
        if what == "end":
            if pos is not None:
                late = [a for a in acked if a[0] > pos]
                gaps += late
                tail = len(late)
            break
        if rv is None or what not in ("list", "relist", "event", "bookmark"):
            continue
        rv = int(rv)
        if pos is None:
            # The first position: a list (or, if its sample was lost, the first event) starts the watch.
            pos = rv
            delivered += what == "event"
            relists += [s.t] if what == "relist" else []
            continue
        if what == "relist":
            covered += len(between(pos, rv, True))
            relists.append(s.t)
        elif what == "list":
            gaps += between(pos, rv, True)  # a fresh list without an expiry: should not happen
        else:
            gaps += between(pos, rv, what == "bookmark")
            delivered += what == "event"
        pos = max(pos, rv)
    return Watch(subject, delivered, gaps, covered, relists, expiries, pos is not None, tail)


@dataclass(frozen=True)
class Watches:
    watches: list[Watch]
    acked: int

    @property
    def gaps(self) -> int:
        return sum(len(w.gaps) for w in self.watches)

    @property
    def relists(self) -> int:
        return sum(len(w.relists) for w in self.watches)

    def _one(self, w: Watch) -> str:
        name = w.subject.removeprefix("watch-")
        if not w.judged:
            return f"{name} never listed"
        out = f"{name} {w.delivered} delivered"
        if w.gaps:
            first = w.gaps[0]
            out += f", {len(w.gaps)} skipped (first: rv {first[0]}, counter {first[1]}"
            out += f"; {w.tail} still missing at stop)" if w.tail else ")"
        if w.relists:
            out += (f", {len(w.relists)} relists after 410 Gone (first at {_ts(w.relists[0])}, "
                    f"covering {w.covered} updates)")
        return out

    @property
    def evidence_gaps(self) -> str:
        return (f"{self.gaps} acknowledged updates skipped by a watch ({self.acked} acknowledged): "
                + "; ".join(self._one(w) for w in self.watches))

    @property
    def evidence_relists(self) -> str:
        expired = [e for w in self.watches for e in w.expiries]
        if not expired:
            return f"no watch expired ({len(self.watches)} watches)"
        return (f"{self.relists} relists after {len(expired)} expiries (410 Gone: {expired[0][:120]!r}); "
                + "; ".join(self._one(w) for w in self.watches if w.relists or w.expiries))


def check_watches(tl: Timeline) -> Watches | None:
    acked = acknowledged(tl.samples_of(PROBE, "update"))
    subjects = sorted({s.subject for s in tl.samples_of(PROBE) if s.subject.startswith("watch-")})
    if not subjects:
        return None
    return Watches([check_watch(sub, tl.samples_of(PROBE, sub), acked) for sub in subjects], len(acked))


# ---- error rates ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Errors:
    what: str
    failed: dict[str, int]
    sent: dict[str, int]
    first_error: str | None

    @property
    def rate(self) -> float | None:
        total = sum(self.sent.values())
        return round(sum(self.failed.values()) / total, 4) if total else None

    def evidence(self, start: float) -> str:
        total, bad = sum(self.sent.values()), sum(self.failed.values())
        if not total:
            return f"not measured: no {self.what} after {_ts(start)}"
        per = ", ".join(f"{k} {self.failed[k]}/{n}" for k, n in sorted(self.sent.items()))
        return (f"{bad} of {total} {self.what} after {_ts(start)} failed ({bad / total:.1%}; {per})"
                + (f"; first error: {self.first_error}" if self.first_error else ""))


def error_rate(samples: Sequence[Sample], start: float, what: str) -> Errors:
    """Failed ÷ sent for the requests sent at or after `start`, per subject too."""
    failed: dict[str, int] = {}
    sent: dict[str, int] = {}
    first: Sample | None = None
    for s in samples:
        if s.t < start:
            continue
        key = s.subject.removeprefix("read-")
        sent[key] = sent.get(key, 0) + 1
        failed.setdefault(key, 0)
        if not s.values.get("ok"):
            failed[key] += 1
            first = s if first is None or s.t < first.t else first
    return Errors(what, failed, sent, f"{first.values.get('error')} at {_ts(first.t)}" if first else None)


def reads_of(tl: Timeline) -> list[Sample]:
    return [s for s in tl.samples_of(PROBE) if s.subject.startswith("read-")]
