"""Nothing unmeasurable reaches a run: an SLO whose probe is missing is refused at load time."""

import pytest

from chaoslab.errors import SpecError
from chaoslab.spec import load_text
from chaoslab.spec.model import METRICS, STEADY_STATE_CONDITIONS
from chaoslab.spec.requirements import CONDITION_PROBE, METRIC_PROBE, unmet_needs

BASE = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: x}
spec:
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - {kind: partition, shape: isolate, select: leader, traffic: peer}
  duration: 20s
  probes: PROBES
  slo:
    SLO
"""


def experiment(probes: str, slo: str) -> str:
    return BASE.replace("PROBES", probes).replace("SLO", slo)


def test_every_metric_and_condition_has_its_probe_named() -> None:
    assert set(METRIC_PROBE) == set(METRICS)
    assert set(CONDITION_PROBE) == set(STEADY_STATE_CONDITIONS)


def test_an_slo_without_its_probe_is_refused_naming_the_slo_and_the_probe() -> None:
    with pytest.raises(SpecError) as err:
        load_text(experiment("[control-plane]", "lostWrites: {max: 0}"), "x.yaml")
    [problem] = err.value.problems
    assert problem.startswith("x.yaml:11 spec.slo.lostWrites: lostWrites needs the writes probe")
    assert "add `writes` to spec.probes or a probe set that has it (data-safety, storage)" in problem


def test_the_same_slo_with_its_probe_loads() -> None:
    [exp] = load_text(experiment("[control-plane, data-safety]", "lostWrites: {max: 0}"), "x.yaml")
    assert [s.metric for s in exp.slos] == ["lostWrites"]


def test_a_steady_state_condition_and_a_lease_left_out_are_refused() -> None:
    text = experiment("[etcd, {kind: lease, names: [kube-controller-manager]}]", "schedulerLeaderElections: {max: 1}")
    with pytest.raises(SpecError) as err:
        load_text(text, "x.yaml")
    problems = err.value.problems
    assert any("spec.steadyState[0]: apiserver-ready needs the apiserver probe" in p for p in problems)
    assert any("schedulerLeaderElections needs the lease probe to watch kube-scheduler" in p for p in problems)


def test_drain_duration_needs_a_drain() -> None:
    [need] = unmet_needs({"drainDuration": "here"}, {}, {}, {"etcd"}, {"kill-process"})
    assert need.fault == "drain-node" and "no drain-node fault" in need.message()
