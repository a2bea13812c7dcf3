"""api-overload's pure parts: the bounds the load generator enforces, its pacing and record, the
parameters, the apiserver-metrics parsing and the APF, latency and Lease metrics."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chaoslab.faults import FAULTS, build, param_problems
from chaoslab.faults.api_overload import ApiOverload
from chaoslab.faults.overload import BOUNDS, Load, Pacer, Stats
from chaoslab.judge.measure import histogram_quantile, measure
from chaoslab.probes.apiserver_metrics import call_class, parse
from chaoslab.timeline import FORMAT, Timeline


def test_registered() -> None:
    assert FAULTS["api-overload"] is ApiOverload


def load(**kw: Any) -> Load:
    base: dict[str, Any] = {"pattern": "list", "concurrency": 8, "requests": 100, "rate": 0.0, "users": 4,
                            "namespace": "ns", "until": time.time() + 60}
    return Load(**(base | kw))


@pytest.mark.parametrize(("kw", "field"), [
    ({"concurrency": BOUNDS.concurrency + 1}, "concurrency"), ({"requests": BOUNDS.requests + 1}, "requests"),
    ({"rate": BOUNDS.rate + 1}, "rate"), ({"users": 9}, "users"), ({"until": BOUNDS.duration + 60}, "duration"),
    ({"seed_objects": 20000, "seed_bytes": 65536}, "seedObjects"), ({"pattern": "flood"}, "pattern"),
    ({"pattern": "relist", "period": 0.5}, "period"),
])
def test_the_generator_refuses_what_exceeds_its_bounds(kw: dict[str, Any], field: str) -> None:
    now = time.time()
    if "until" in kw:  # seconds from now, made absolute when the test runs (not when it is collected)
        kw = {**kw, "until": now + kw["until"]}
    assert [f for f, _ in load(**kw).problems(now)] == [field]
    assert load().problems(time.time()) == []


def test_the_fault_checks_the_same_bounds_when_the_experiment_is_loaded() -> None:
    assert [f for f, _ in param_problems("api-overload", {"concurrency": 65})] == ["concurrency"]
    assert [f for f, _ in param_problems("api-overload", {"users": 20, "concurrency": 4})] == ["users"]
    fault = build("api-overload", {"pattern": "relist", "concurrency": 4, "users": 2}, duration=30)
    assert isinstance(fault, ApiOverload) and fault.deadline() == 90


def test_the_budget_and_the_pace_hold() -> None:
    stats = Stats()
    assert sum(stats.take(5) for _ in range(9)) == 5
    pacer, stop = Pacer(50.0), threading.Event()
    t0 = time.monotonic()
    for _ in range(11):
        pacer.wait(stop)
    assert time.monotonic() - t0 >= 0.19  # 10 intervals of 20 ms
    stats.done("200", 0.1)
    stats.done("429", 0.3)
    line = stats.line(1.0)
    assert line["answered"] == {"200": 1, "429": 1} and line["p99"] == 0.3 and stats.line(2.0)["answered"] == {}


METRICS = """\
# HELP apiserver_flowcontrol_rejected_requests_total Number of requests rejected by API Priority and Fairness system
# TYPE apiserver_flowcontrol_rejected_requests_total counter
apiserver_flowcontrol_rejected_requests_total{flow_schema="global-default",priority_level="global-default",reason="queue-full"} 7
# TYPE apiserver_flowcontrol_current_inqueue_requests gauge
apiserver_flowcontrol_current_inqueue_requests{flow_schema="global-default",priority_level="global-default"} 3
# TYPE apiserver_flowcontrol_request_wait_duration_seconds histogram
apiserver_flowcontrol_request_wait_duration_seconds_bucket{execute="true",flow_schema="global-default",priority_level="global-default",le="0.1"} 4
apiserver_flowcontrol_request_wait_duration_seconds_bucket{execute="true",flow_schema="global-default",priority_level="global-default",le="+Inf"} 5
apiserver_flowcontrol_request_wait_duration_seconds_sum{execute="true",flow_schema="global-default",priority_level="global-default"} 1
apiserver_flowcontrol_request_wait_duration_seconds_count{execute="true",flow_schema="global-default",priority_level="global-default"} 5
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="configmaps",scope="cluster",subresource="",verb="LIST",version="v1",le="1"} 2
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="configmaps",scope="cluster",subresource="",verb="LIST",version="v1",le="+Inf"} 2
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1",le="+Inf"} 9
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="configmaps",scope="cluster",subresource="",verb="LIST",version="v1"} 1
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="configmaps",scope="cluster",subresource="",verb="LIST",version="v1"} 2
# TYPE apiserver_storage_objects gauge
apiserver_storage_objects{resource="configmaps"} 500
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.1e+08
"""


def test_parse_keeps_the_apf_families_and_the_slo_classes() -> None:
    got = parse(METRICS)
    assert got["rejected"] == {"global-default": 7.0} and got["inqueue"] == {"global-default": 3.0}
    assert got["wait"] == {"0.1": 4.0, "+Inf": 5.0}
    assert got["latency"] == {"read-cluster": {"1": 2.0, "+Inf": 2.0}}
    assert got["rss"] == 3.1e8
    assert (call_class("PATCH", "namespace"), call_class("GET", "resource"), call_class("WATCH", "cluster")) == (
        "mutating", "read-resource", None)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    assert histogram_quantile(0.99, {"0.5": 0, "1": 100, "+Inf": 100}) == 0.995
    assert histogram_quantile(0.99, {"1": 0, "+Inf": 10}) == 1.0  # beyond the last bound: that bound
    assert histogram_quantile(0.99, {"+Inf": 0}) is None


def test_apf_latency_and_lease_metrics_over_the_fault() -> None:
    def metrics(rejected: float, wait: float, lists: float, inqueue: float) -> dict[str, Any]:
        return {"ok": True, "rejected": {"global-default": rejected}, "inqueue": {"global-default": inqueue},
                "wait": {"0.5": wait, "+Inf": wait}, "latency": {"read-cluster": {"2": lists, "+Inf": lists}}}

    records: list[dict[str, Any]] = [{"format": FORMAT, "startedWall": 0.0}]
    records += [{"t": 1.0, "probe": "apiserver-metrics", "subject": "cp1", "values": metrics(5, 10, 10, 0)},
                {"t": 6.0, "probe": "apiserver-metrics", "subject": "cp1", "values": metrics(25, 110, 60, 12)},
                {"t": 11.0, "probe": "apiserver-metrics", "subject": "cp1", "values": metrics(45, 210, 110, 3)},
                {"t": 30.0, "probe": "apiserver-metrics", "subject": "cp1", "values": metrics(90, 300, 200, 0)}]
    records += [{"t": float(t), "probe": "lease", "subject": "kube-scheduler",
                 "values": {"holder": "cp1", "identity": "cp1_x", "renew": f"r{t}", "duration": 15}}
                for t in (0, 2, 4, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)]
    records += [{"t": float(t), "probe": "node-lease", "subject": node,
                 "values": {"holder": node, "renew": f"{node}-{t}", "duration": 40}}
                for node, times in (("n1", (0, 10, 20)), ("n2", (1, 5, 18, 19))) for t in times]
    records += [{"t": 2.0, "event": "inject", "detail": {"component": "kube-apiserver", "targets": ["api@lb"]}},
                {"t": 20.0, "event": "revert", "detail": {"ok": True}}, {"t": 31.0, "event": "run-end", "detail": {}}]
    records[1:] = sorted(records[1:], key=lambda r: r["t"])
    m = measure(Timeline.from_records(records), (), settle=1.0)
    assert m.values["apfRejectedRequests"] == 40.0  # 45 at the last sample before the revert - 5 before the inject
    assert m.values["apfMaxInQueue"] == 12.0
    assert m.values["apiReadClusterLatencyP99"] == 1.98
    assert m.values["apfWaitP99"] == 0.495
    assert m.values["apiMutatingLatencyP99"] is None
    assert m.values["leaseRenewalGap"] == 9.0 and "from t=4.00 s" in m.evidence["leaseRenewalGap"]
    # n2: renewed at 5, then not until 18: 13 s (n1's gaps are 10 s).
    assert m.values["nodeLeaseRenewalGap"] == 13.0 and "n2 node Lease" in m.evidence["nodeLeaseRenewalGap"]
