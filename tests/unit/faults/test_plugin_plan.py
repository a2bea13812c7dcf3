"""A fault kind from a plugin (entry point `chaoslab.faults`): its contract is checked once, when it is
registered, with errors naming the plugin; one that says nothing more than its targets and undo (it
derives `FaultBase`) is planned from that data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from test_helper_pod_network import NetApi, target

from chaoslab import faults
from chaoslab.faults.base import FaultBase, FaultParams, Injection, Undo
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import make_plan
from chaoslab.spec import loader as spec_loader
from chaoslab.spec.loader import load_text


@dataclass(frozen=True)
class BlackholeParams(FaultParams):
    service: str = "web"


class Blackhole(FaultBase):
    kind: ClassVar[str] = "blackhole"
    params_type: ClassVar[type] = BlackholeParams
    level: ClassVar[str] = "api"

    def __init__(self, params: BlackholeParams, duration: float = 0.0, rng: Any = None) -> None:
        self.params = params

    def resolve(self, target: Any, index: int) -> Injection:
        return Injection(self.kind, index, "service", "by name", (f"service@{self.params.service}",),
                         (Undo("release", {"component": "web", "host": "cp-1"}),))

    def inject(self, target: Any, injection: Injection, record: Any = None) -> None:
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


def test_a_plugin_fault_with_the_default_describe_is_planned_from_its_targets_and_undo(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faults.FAULTS, "blackhole", Blackhole)  # removed again after the test
    faults.register(Blackhole)  # accepted: its contract holds
    monkeypatch.setattr(spec_loader, "_plugin_fault_kinds", lambda: frozenset({"blackhole"}))
    [exp] = load_text(EXPERIMENT, "x.yaml")
    plan = make_plan(exp, target(NetApi([])), [{"kind": "apiserver"}], settings=Settings(), yes=True)
    assert not plan.refusals, plan.refusals
    [fp] = plan.faults
    assert fp.actions == ["blackhole on service@shop"]
    assert fp.undo == ["release {'component': 'web', 'host': 'cp-1'}"]


class NoRecord(Blackhole):
    kind: ClassVar[str] = "no-record"

    def inject(self, target: Any, injection: Injection) -> None:  # type: ignore[override]
        pass


class NoLevel(Blackhole):
    kind: ClassVar[str] = "no-level"
    level: ClassVar[str] = "host"


class PlainParams(Blackhole):
    kind: ClassVar[str] = "plain-params"
    params_type: ClassVar[type] = dict


@pytest.mark.parametrize(("plugin", "message"), [
    (NoRecord, r"fault plugin .*NoRecord: inject\(target, injection, record\) must take `record`"),
    (NoLevel, r"fault plugin .*NoLevel: level must be one of api, node"),
    (PlainParams, r"fault plugin .*PlainParams: params_type must be a dataclass deriving from .*FaultParams"),
])
def test_a_plugin_breaking_the_fault_contract_is_refused_at_registration_naming_it(plugin: type, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        faults.register(plugin)
    assert plugin.kind not in faults.FAULTS
