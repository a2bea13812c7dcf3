"""The Kubernetes API consistency checks (`chaoslab.judge.consistency`) on fake `kube-sequence` timelines: a read
that goes back in resourceVersion, a watch that skips an acknowledged update, a relist that covers the
updates it could not deliver, a watch left behind at stop, and the error rates."""

from __future__ import annotations

from typing import Any

from chaoslab.judge import consistency
from chaoslab.judge.measure import measure
from chaoslab.timeline import Sample, Timeline

from .synthetic import Record, build

P = "kube-sequence"


def update(t: float, counter: int, rv: int | None, ok: bool = True) -> Record:
    return (t, P, "update", {"ok": ok, "counter": counter, "rv": rv, "error": None if ok else "504 Timeout",
                             "seconds": 0.01})


def read(t: float, ep: str, rv: int | None, floor: int, ok: bool = True) -> Record:
    return (t, P, f"read-{ep}", {"ok": ok, "counter": None, "rv": rv, "floor": floor,
                                 "error": None if ok else "GET: no answer", "seconds": 0.01})


def watch(t: float, ep: str, what: str, rv: int | None, error: str | None = None) -> Record:
    return (t, P, f"watch-{ep}", {"what": what, "rv": rv, "counter": None, "error": error})


def sample(rec: Record) -> Sample:
    assert len(rec) == 4
    values: Any = rec[3]
    return Sample(rec[0], rec[1], rec[2], values)


def updates(rvs: list[int], start: float = 1.0) -> list[Record]:
    return [update(start + 0.2 * i, i + 1, rv) for i, rv in enumerate(rvs)]


def test_a_quorum_read_below_a_resource_version_already_seen_is_a_regression() -> None:
    reads = [sample(read(1.0, "cp1", 10, 10)), sample(read(1.1, "cp2", 12, 10)),
             sample(read(1.2, "cp3", 11, 12)), sample(read(1.3, "cp3", None, 12, ok=False))]
    checked = consistency.check_reads(reads)
    assert checked.reads == 3
    assert [s.subject for s in checked.regressions] == ["read-cp3"]
    assert "cp3 returned 11" in checked.evidence and "after 12 had been seen" in checked.evidence


def test_equal_resource_versions_from_different_apiservers_are_no_regression() -> None:
    assert not consistency.check_reads([sample(read(1.0, "cp1", 12, 12)), sample(read(1.0, "lb", 12, 12))]).regressions


def test_a_watch_that_delivers_every_acknowledged_update_has_no_gap() -> None:
    acked = [(11, 1), (12, 2), (13, 3)]
    ss = [sample(r) for r in (watch(0.5, "cp1", "list", 10), watch(1.0, "cp1", "event", 11),
                              watch(1.2, "cp1", "event", 12), watch(1.4, "cp1", "event", 13),
                              watch(9.0, "cp1", "end", 13))]
    w = consistency.check_watch("watch-cp1", ss, acked)
    assert (w.gaps, w.delivered, w.relists, w.judged) == ([], 3, [], True)


def test_an_acknowledged_update_skipped_between_two_delivered_ones_is_a_gap() -> None:
    acked = [(11, 1), (12, 2), (14, 3)]
    # rv 13 was a write nobody acknowledged (timed out, committed): delivering it is fine, skipping 12 is not.
    ss = [sample(r) for r in (watch(0.5, "cp1", "list", 10), watch(1.0, "cp1", "event", 11),
                              watch(1.4, "cp1", "event", 13), watch(1.6, "cp1", "event", 14),
                              watch(9.0, "cp1", "end", 14))]
    w = consistency.check_watch("watch-cp1", ss, acked)
    assert w.gaps == [(12, 2)] and w.tail == 0


def test_a_bookmark_past_an_undelivered_update_is_a_gap_but_one_at_it_is_not() -> None:
    acked = [(11, 1), (12, 2)]
    at = [sample(r) for r in (watch(0.5, "cp1", "list", 10), watch(1.0, "cp1", "event", 11),
                              watch(1.2, "cp1", "bookmark", 11), watch(1.4, "cp1", "event", 12))]
    assert consistency.check_watch("watch-cp1", at, acked).gaps == []
    past = [sample(r) for r in (watch(0.5, "cp1", "list", 10), watch(1.0, "cp1", "event", 11),
                                watch(1.4, "cp1", "bookmark", 12))]
    assert consistency.check_watch("watch-cp1", past, acked).gaps == [(12, 2)]


def test_updates_covered_by_a_relist_after_410_are_not_gaps_but_the_relist_is_counted() -> None:
    acked = [(11, 1), (12, 2), (13, 3), (14, 4), (15, 5)]
    ss = [sample(r) for r in (watch(0.5, "cp2", "list", 10), watch(1.0, "cp2", "event", 11),
                              watch(2.0, "cp2", "broken", 11, "no answer"),
                              watch(5.0, "cp2", "expired", 11, "too old resource version: 11 (14)"),
                              watch(5.1, "cp2", "relist", 14), watch(5.5, "cp2", "event", 15),
                              watch(9.0, "cp2", "end", 15))]
    w = consistency.check_watch("watch-cp2", ss, acked)
    assert (w.gaps, w.covered, w.relists) == ([], 3, [5.1])
    assert w.expiries == ["too old resource version: 11 (14)"]


def test_updates_the_watch_never_delivered_by_the_end_are_gaps() -> None:
    acked = [(11, 1), (12, 2), (13, 3)]
    ss = [sample(r) for r in (watch(0.5, "cp3", "list", 10), watch(1.0, "cp3", "event", 11),
                              watch(9.0, "cp3", "end", 11))]
    w = consistency.check_watch("watch-cp3", ss, acked)
    assert w.gaps == [(12, 2), (13, 3)] and w.tail == 2


def test_a_watch_that_never_listed_is_not_judged() -> None:
    w = consistency.check_watch("watch-cp3", [sample(watch(1.0, "cp3", "broken", None, "refused"))], [(11, 1)])
    assert not w.judged and w.gaps == []


def test_error_rates_count_requests_after_injection_per_endpoint() -> None:
    reads = [sample(r) for r in (read(0.5, "cp1", None, 0, ok=False), read(1.0, "cp1", 11, 10),
                                 read(1.0, "cp2", None, 10, ok=False), read(1.5, "cp2", None, 11, ok=False),
                                 read(1.5, "lb", 11, 11))]
    errors = consistency.error_rate(reads, 1.0, "API quorum reads")
    assert errors.sent == {"cp1": 1, "cp2": 2, "lb": 1} and errors.failed == {"cp1": 0, "cp2": 2, "lb": 0}
    assert errors.rate == 0.5
    assert errors.evidence(1.0).startswith("2 of 4 API quorum reads after t=1.00 s failed (50.0%; cp1 0/1, cp2 2/2")
    assert consistency.error_rate([], 1.0, "API updates").rate is None


def _run(extra: list[Record]) -> Timeline:
    base: list[Record] = [(2.0, "inject", {"fault": "partition", "targets": [], "component": "etcd"}),
                          (6.0, "revert", {"fault": "partition", "ok": True})]
    return build(base + extra)


def test_measure_reports_the_metrics_with_evidence() -> None:
    records: list[Record] = [*updates([11, 12, 13, 14]), update(1.8, 5, None, ok=False)]
    records += [read(t, "cp1", 11, 11) for t in (1.0, 2.5)] + [read(3.0, "cp2", 10, 12)]
    records += [read(3.0, "cp3", None, 12, ok=False)]
    records += [watch(0.5, ep, "list", 10) for ep in ("lb", "cp1")]
    records += [watch(1.0 + 0.2 * i, "lb", "event", rv) for i, rv in enumerate([11, 12, 13, 14])]
    records += [watch(1.0, "cp1", "event", 11), watch(1.4, "cp1", "event", 13), watch(1.6, "cp1", "event", 14)]
    records += [watch(9.0, ep, "end", 14) for ep in ("lb", "cp1")]
    m = measure(_run(records), (), settle=1.0)
    assert m.values["resourceVersionRegressions"] == 1
    assert m.values["watchGaps"] == 1 and m.values["watchRelists"] == 0
    assert m.values["apiReadErrorRate"] == round(1 / 3, 4)
    assert m.values["apiWriteErrorRate"] is None  # no update after injection
    assert "cp1 3 delivered, 1 skipped (first: rv 12, counter 2)" in m.evidence["watchGaps"]
    assert "cp2 returned 10" in m.evidence["resourceVersionRegressions"]
    assert m.evidence["apiWriteErrorRate"].startswith("not measured")


def test_without_the_probe_the_metrics_are_not_measured() -> None:
    m = measure(_run([]), (), settle=1.0)
    assert all(m.values[k] is None for k in ("resourceVersionRegressions", "watchGaps", "watchRelists",
                                             "apiReadErrorRate", "apiWriteErrorRate"))
