"""apiserver-metrics probe: every `interval` (5 s) it reads each apiserver's own /metrics and keeps what
says whether API Priority and Fairness is holding: requests rejected and queued per priority level, the
time requests waited in APF's queues, request latency by kind of call, and the apiserver's memory.

One sample per apiserver (`apiserver-metrics/<host>`) with:
- `rejected`: priority level → `apiserver_flowcontrol_rejected_requests_total` (counter, all reasons);
- `inqueue`, `executing`: priority level → `apiserver_flowcontrol_current_inqueue_requests`,
  `..._current_executing_requests` (gauges);
- `wait`: bucket bound → cumulative count of `apiserver_flowcontrol_request_wait_duration_seconds`, all
  priority levels together (a histogram);
- `latency`: class → bucket bound → cumulative count of `apiserver_request_duration_seconds`, the classes
  of the SIG Scalability SLOs: `mutating` (POST, PUT, PATCH, DELETE, DELETECOLLECTION), `read-resource`
  (GET of one object), `read-namespace` and `read-cluster` (LIST by scope); WATCH and CONNECT left out;
- `rss`: `process_resident_memory_bytes`.

Counters and histograms are cumulative since the apiserver started: the metrics (chaoslab.judge.measure)
take the difference between the last sample before the injection and the last before the revert. Cost:
one GET /metrics per apiserver per interval (about 1-2 MB of text on the lab), parsed here; only the
families above are parsed (the rest of the text is skipped line by line).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from chaoslab.probes.base import Sampler

PROBE = "apiserver-metrics"
FAMILIES = ("apiserver_flowcontrol_rejected_requests_total", "apiserver_flowcontrol_current_inqueue_requests",
            "apiserver_flowcontrol_current_executing_requests", "apiserver_flowcontrol_request_wait_duration_seconds",
            "apiserver_request_duration_seconds", "process_resident_memory_bytes")
MUTATING = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION")


def call_class(verb: str, scope: str) -> str | None:
    """The SLO class of a request: mutating, read-resource, read-namespace, read-cluster; None for
    WATCH, CONNECT and anything else."""
    if verb in MUTATING:
        return "mutating"
    if verb in ("GET", "LIST"):
        return {"resource": "read-resource", "namespace": "read-namespace", "cluster": "read-cluster"}.get(scope)
    return None


def wanted(text: str) -> str:
    """Only the lines of the families this probe reads (and their # TYPE/# HELP lines)."""
    keep = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("# ") and line.count(" ") >= 2 else line.split("{", 1)[0].split(" ", 1)[0]
        if any(name == f or name.startswith(f + "_") for f in FAMILIES):
            keep.append(line)
    return "\n".join(keep) + "\n"


def parse(text: str) -> dict[str, Any]:
    """The sample values (see the module docstring) from one /metrics text."""
    rejected: dict[str, float] = defaultdict(float)
    inqueue: dict[str, float] = defaultdict(float)
    executing: dict[str, float] = defaultdict(float)
    wait: dict[str, float] = defaultdict(float)
    latency: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rss = None
    for family in text_string_to_metric_families(wanted(text)):
        for s in family.samples:
            labels = s.labels
            if s.name == "apiserver_flowcontrol_rejected_requests_total":
                rejected[labels.get("priority_level", "")] += s.value
            elif s.name == "apiserver_flowcontrol_current_inqueue_requests":
                inqueue[labels.get("priority_level", "")] += s.value
            elif s.name == "apiserver_flowcontrol_current_executing_requests":
                executing[labels.get("priority_level", "")] += s.value
            elif s.name == "apiserver_flowcontrol_request_wait_duration_seconds_bucket":
                wait[labels["le"]] += s.value
            elif s.name == "apiserver_request_duration_seconds_bucket":
                cls = call_class(labels.get("verb", ""), labels.get("scope", ""))
                if cls:
                    latency[cls][labels["le"]] += s.value
            elif s.name == "process_resident_memory_bytes":
                rss = s.value
    return {"rejected": dict(rejected), "inqueue": dict(inqueue), "executing": dict(executing), "wait": dict(wait),
            "latency": {k: dict(v) for k, v in latency.items()}, "rss": rss}


class ApiserverMetricsProbe(Sampler):
    kind = PROBE
    interval = 5.0

    def start(self) -> None:
        self.session = self.target.api().with_pool(4).session
        for subject, url in self.target.apiserver_endpoints().items():
            if subject != "lb":
                self._spawn(lambda s=subject, u=url: self._endpoint_loop(s, u), f"{PROBE}-{subject}")

    def _endpoint_loop(self, subject: str, url: str) -> None:
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            t = self.timeline.now()
            try:
                resp = self.session.get(f"{url}/metrics", timeout=10)
                if resp.status_code == 200:
                    self.timeline.sample(PROBE, subject, t=t, ok=True, **parse(resp.text))
                else:
                    self.timeline.sample(PROBE, subject, t=t, ok=False, error=f"HTTP {resp.status_code}")
            except (requests.RequestException, ValueError) as exc:
                self.timeline.sample(PROBE, subject, t=t, ok=False, error=str(exc)[:200])
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    @property
    def requests_per_second(self) -> float:
        return (len(self.target.apiserver_endpoints()) - 1) / self.interval
