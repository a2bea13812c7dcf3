"""The dashboards in dashboards/: valid JSON, no panel without a query, and every query names a metric that
chaoslab exports or a control-plane component exports (tests/integration/test_dashboards.py checks the
component list against the real lab)."""

import json
from pathlib import Path

import pytest

from chaoslab.ops import dashboards
from chaoslab.ops.dashboards import COMPONENT_METRICS, metric_names
from chaoslab.reports.prometheus import EXPORTED

FILES = dashboards.files()
KNOWN = set(EXPORTED) | {m for names in COMPONENT_METRICS.values() for m in names}


def test_there_are_dashboards_for_runs_and_the_control_plane() -> None:
    assert {f.name for f in FILES} >= {"chaoslab-runs.json", "control-plane.json"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_is_valid_grafana_json(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["uid"] and data["title"] and 36 <= data["schemaVersion"] <= 41
    ids = [p["id"] for p in dashboards.panels(data)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_panel_has_a_query(path: Path) -> None:
    data = dashboards.load(path)
    for p in dashboards.panels(data):
        targets = p.get("targets", [])
        assert targets, f"panel {p['title']!r} has no targets"
        assert all(t.get("expr", "").strip() for t in targets), f"panel {p['title']!r} has an empty query"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_query_names_an_exported_metric(path: Path) -> None:
    for where, expr in dashboards.queries(dashboards.load(path)):
        names = metric_names(expr)
        assert names, f"{path.name} {where}: no metric in {expr!r}"
        assert names <= KNOWN, f"{path.name} {where}: unknown metric(s) {sorted(names - KNOWN)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fault_windows_are_annotations(path: Path) -> None:
    exprs = [a.get("expr", "") for a in dashboards.load(path)["annotations"]["list"]]
    assert any("chaoslab_fault_start_timestamp_seconds" in e for e in exprs)
    assert any("chaoslab_fault_end_timestamp_seconds" in e for e in exprs)


def test_the_control_plane_dashboard_covers_the_standard_metrics() -> None:
    used = {n for _, e in dashboards.queries(dashboards.load(dashboards.DIRECTORY / "control-plane.json"))
            for n in metric_names(e)}
    assert {"etcd_server_leader_changes_seen_total", "etcd_server_has_leader", "etcd_server_proposals_failed_total",
            "apiserver_request_duration_seconds_bucket", "leader_election_master_status"} <= used


@pytest.mark.parametrize(("expr", "names"), [
    ('histogram_quantile(0.99, sum by (le, verb) (rate(apiserver_request_duration_seconds_bucket{verb!~"WATCH"}[5m])))',
     {"apiserver_request_duration_seconds_bucket"}),
    ('chaoslab_metric_value{experiment=~"$experiment", metric=~"a|b"} * 1000', {"chaoslab_metric_value"}),
    ("sum(increase(etcd_server_leader_changes_seen_total[$__rate_interval])) or vector(0)",
     {"etcd_server_leader_changes_seen_total"}),
    ("max by (name, instance) (leader_election_master_status) > bool 0.5", {"leader_election_master_status"}),
    ("vector(1) * 1e3", set()),
])
def test_metric_names_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
