"""The Grafana dashboards shipped in `dashboards/`: where they are, their queries, and the metric names
those queries use, so tests can check every name against what chaoslab exports
(`chaoslab.reports.prometheus.EXPORTED`) and what the control-plane components export
(`COMPONENT_METRICS`, checked against the real lab by tests/integration/test_dashboards.py).

    >>> metric_names('histogram_quantile(0.99, sum by (le, verb) (rate(apiserver_request_duration_seconds_bucket{verb!="WATCH"}[5m])))')
    {'apiserver_request_duration_seconds_bucket'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).resolve().parents[2] / "dashboards"

#: Metrics of the control-plane components the dashboards use, by the component that exports them.
COMPONENT_METRICS = {
    "etcd": ("etcd_server_has_leader", "etcd_server_leader_changes_seen_total",
             "etcd_server_proposals_failed_total", "etcd_server_proposals_committed_total"),
    "kube-apiserver": ("apiserver_request_duration_seconds_bucket", "apiserver_request_total"),
    "kube-scheduler": ("leader_election_master_status",),
    "kube-controller-manager": ("leader_election_master_status",),
}

#: PromQL words that look like metric names: functions, aggregations, keywords.
_WORDS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"(?<![\w:$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, labels or variables)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", "{}", text)                                 # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)                                 # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)                                  # Grafana variables
    out = set()
    for m in _NAME.finditer(text):
        name = m.group(1)
        rest = text[m.end():].lstrip()
        if name.lower() in _WORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]?", name) or (name[0] in "eE" and name[1:].isdigit()):
            continue
        out.add(name)
    return out


def files(directory: Path = DIRECTORY) -> list[Path]:
    return sorted(directory.glob("*.json"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows; rows themselves are not panels."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, annotation and templating query."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            yield f"panel {p.get('title')!r}", str(t.get("expr", ""))
    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("expr"):
            yield f"annotation {a.get('name')!r}", str(a["expr"])
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        text = q.get("query", "") if isinstance(q, dict) else str(q or "")
        if v.get("type") == "query" and (m := re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", text)):
            yield f"variable {v.get('name')!r}", m.group(1)


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise TypeError(f"{path}: not a dashboard (a JSON object)")
    return data
