from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from chaoslab.errors import SpecError
from chaoslab.spec import durations
from chaoslab.spec.loader import schema
from chaoslab.spec.model import METRICS, STEADY_STATE_CONDITIONS
from chaoslab.spec.probesets import load_probe_set

REPO = Path(__file__).resolve().parents[3]


def test_the_published_schema_is_the_shipped_one() -> None:
    shipped = (REPO / "chaoslab" / "spec" / "experiment.schema.json").read_text()
    assert (REPO / "docs" / "experiment.schema.json").read_text() == shipped
    Draft202012Validator.check_schema(json.loads(shipped))


def test_the_schema_agrees_with_the_model() -> None:
    defs = schema()["$defs"]
    steady = defs["experimentSpec"]["properties"]["steadyState"]["items"]["enum"]
    assert steady == list(STEADY_STATE_CONDITIONS)
    for table, by_unit in (("slo", {"s": "sloSeconds", "count": "sloCount", "ratio": "sloRatio"}),
                           ("abort", {"s": "duration", "count": "count", "ratio": "ratio"})):
        refs = {m: p["$ref"].rsplit("/", 1)[1] for m, p in defs[table]["properties"].items()}
        assert refs == {m: by_unit[unit] for m, unit in METRICS.items()}
    assert defs["duration"]["pattern"] == durations.PATTERN


def test_every_fault_kind_has_its_params_schema() -> None:
    fault = schema()["$defs"]["fault"]
    kinds = fault["properties"]["kind"]["enum"]
    assert [rule["if"]["properties"]["kind"]["const"] for rule in fault["allOf"]] == kinds
    assert all(f"fault-{kind}" in schema()["$defs"] for kind in kinds)


def test_the_control_plane_probe_set_loads_with_seconds() -> None:
    assert load_probe_set("control-plane") == [
        {"kind": "etcd", "interval": 0.1},
        {"kind": "lease", "names": ["kube-scheduler", "kube-controller-manager"]},
        {"kind": "apiserver", "interval": 0.25},
        {"kind": "canary", "interval": 2.0}, {"kind": "records"},
    ]
    assert load_probe_set(REPO / "probes" / "control-plane.yaml") == load_probe_set("control-plane")
    assert load_probe_set("etcd") == [{"kind": "etcd"}]


def test_a_missing_probe_set_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=(r"no probe set 'nope' \(looked for .*\); known sets: .*control-plane"
                                         r".*; single probes: etcd, lease, apiserver, canary")):
        load_probe_set("nope", search=[tmp_path])


def test_a_bad_probe_set_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: chaoslab.io/v1alpha1\nkind: ProbeSet\nmetadata: {name: bad}\nspec:\n"
                    "  probes:\n    - {kind: etcd, interval: fast}\n    - {kind: lease, interval: 1s}\n")
    with pytest.raises(SpecError) as info:
        load_probe_set("bad", search=[tmp_path])
    assert info.value.problems == [
        (f"{path}:6 spec.probes[0].interval: 'fast' is not valid; expected a number of seconds or a "
         "duration like 500ms, 30s, 1m30s, 2h"),
        f"{path}:7 spec.probes[1].interval: unknown field (allowed: kind, names)"]
