"""A fault kind from a plugin (entry point `chaoslab.faults`) that has only `resolve` and `inject` is still
planned: its lines come from its targets and undo data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from test_helper_pod_network import NetApi, target

from chaoslab import faults
from chaoslab.faults.base import Injection, Undo
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import make_plan
from chaoslab.spec import loader as spec_loader
from chaoslab.spec.loader import load_text


@dataclass(frozen=True)
class BlackholeParams:
    service: str = "web"


class Blackhole:
    kind: ClassVar[str] = "blackhole"
    params_type: ClassVar[type] = BlackholeParams
    level: ClassVar[str] = "api"

    def __init__(self, params: BlackholeParams, duration: float = 0.0, rng: Any = None) -> None:
        self.params = params

    def resolve(self, target: Any, index: int) -> Injection:
        return Injection(self.kind, index, "service", "by name", (f"service@{self.params.service}",),
                         (Undo("release", {"component": "web", "host": "cp-1"}),))

    def inject(self, target: Any, injection: Injection) -> None:
        raise AssertionError("planning injects nothing")


EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: plugin}
spec:
  faults:
    - {kind: blackhole, service: shop}
  steadyState: [apiserver-ready]
  duration: 10s
  probes: [apiserver]
"""


def test_a_plugin_fault_without_describe_is_planned_from_its_targets_and_undo(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faults.FAULTS, "blackhole", Blackhole)  # removed again after the test
    faults.register(Blackhole)  # accepted: it has resolve and inject
    monkeypatch.setattr(spec_loader, "_plugin_fault_kinds", lambda: frozenset({"blackhole"}))
    [exp] = load_text(EXPERIMENT, "x.yaml")
    plan = make_plan(exp, target(NetApi([])), [{"kind": "apiserver"}], settings=Settings(), yes=True)
    assert not plan.refusals, plan.refusals
    [fp] = plan.faults
    assert fp.actions == ["blackhole on service@shop"]
    assert fp.undo == ["release {'component': 'web', 'host': 'cp-1'}"]
