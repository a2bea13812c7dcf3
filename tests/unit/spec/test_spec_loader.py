from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import chaoslab.spec
from chaoslab.errors import SpecError
from chaoslab.spec import load, load_text, validate_paths
from chaoslab.spec import loader as spec_loader
from chaoslab.spec.model import Experiment, FaultSpec, SloSpec, TargetSpec

REPO = Path(__file__).resolve().parents[3]
SHIPPED = sorted([*(REPO / "experiments").glob("*.yaml"), *(REPO / "experiments" / "failing").glob("*.yaml")])

ISSUE_EXAMPLE = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata:
  name: scheduler-leader-kill
  description: Kill the kube-scheduler leader; a standby must take over and keep scheduling.
spec:
  target: {kind: lab}                 # later also kubeconfig contexts and SSH hosts
  steadyState: [apiserver-ready, scheduler-leader, etcd-quorum]   # must hold before (else abort) and again after
  faults:
    - kind: kill-process
      component: kube-scheduler
      select: leader                   # leader | follower | random | all | host:cp2
      signal: KILL
  duration: 30s                        # how long the fault holds / the observation window
  probes: [control-plane]              # a probe set from probes/control-plane.yaml
  slo:
    recoveryTime: {max: 30s}
    schedulerLeaderElections: {max: 1}
    etcdLeaderElections: {max: 0}
    apiserverUnavailable: {max: 0s}
  runs: 1                              # repeat N times; report the distribution, judge the worst
"""

# What experiments/compact-scheduler.yaml means, written out in the full form.
COMPACT_AS_FULL = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: compact-scheduler}
spec:
  faults:
    - {kind: kill-process, component: kube-scheduler}
  duration: 30s
  slo:
    recoveryTime: {max: 45s}
    etcdLeaderElections: {max: 2}
"""

BROKEN = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata:
  name: kill
spce: {}
spec:
  faults:
    - kind: kill-process
      component: kube-scheduler
      select: leader
      signal: HUP
  duration: 30 sec
  slo:
    recoveryTme: {max: 30s}
  runs: 0
"""


def problems_of(text: str, source: str = "experiments/kill.yaml") -> list[str]:
    with pytest.raises(SpecError) as info:
        load_text(text, source)
    return info.value.problems


def without_places(exp: Experiment) -> Experiment:
    return dataclasses.replace(
        exp, source=None, raw={},
        faults=tuple(dataclasses.replace(f, where="") for f in exp.faults),
        slos=tuple(dataclasses.replace(s, where="") for s in exp.slos))


def test_public_api_is_pinned() -> None:
    assert sorted(chaoslab.spec.__all__) == ["load", "load_text", "parse_duration", "validate_paths"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_experiment_loads(path: Path) -> None:
    experiments = load(path)
    assert experiments and all(e.source == path and e.faults and e.slos for e in experiments)


def test_the_failing_experiment_asks_for_less_than_a_lease_allows() -> None:
    [exp] = load(REPO / "experiments" / "failing" / "scheduler-recovery-too-tight.yaml")
    assert [(s.metric, s.aggregate, s.threshold) for s in exp.slos] == [
        ("schedulerTimeToNewLeader", "max", 5.0)]


def test_the_issue_example_loads_into_the_model() -> None:
    [exp] = load_text(ISSUE_EXAMPLE, "experiments/kill.yaml")
    assert exp.name == "scheduler-leader-kill"
    assert exp.target == TargetSpec("lab", {})
    assert exp.steady_state == ("apiserver-ready", "scheduler-leader", "etcd-quorum")
    params = {"component": "kube-scheduler", "select": "leader", "signal": "KILL"}
    assert exp.faults == (FaultSpec("kill-process", params, "experiments/kill.yaml:10 spec.faults[0]"),)
    assert exp.duration == 30.0 and exp.probes == ("control-plane",) and exp.runs == 1
    assert exp.slos[0] == SloSpec("recoveryTime", "max", 30.0,
                                  "experiments/kill.yaml:17 spec.slo.recoveryTime")
    assert [(s.metric, s.threshold) for s in exp.slos[1:]] == [
        ("schedulerLeaderElections", 1.0), ("etcdLeaderElections", 0.0), ("apiserverUnavailable", 0.0)]
    assert exp.source == Path("experiments/kill.yaml") and exp.raw["metadata"]["name"] == exp.name


def test_defaults_come_from_the_model() -> None:
    [exp] = load_text(COMPACT_AS_FULL)
    model = Experiment("x", (), 1.0)
    got = (exp.steady_state, exp.probes, exp.runs, exp.settle, exp.recovery_timeout, exp.target, exp.source)
    assert got == (model.steady_state, model.probes, 1, 5.0, 120.0, None, None)


def test_the_compact_form_means_the_same_as_the_full_form() -> None:
    [compact] = load(REPO / "experiments" / "compact-scheduler.yaml")
    [full] = load_text(COMPACT_AS_FULL)
    assert without_places(compact) == without_places(full)
    assert compact.slos[0].where.endswith(" spec.expectedRecovery")


def test_compact_apiserver_kills_a_random_one_and_reads_every_monitoring_form() -> None:
    [exp] = load_text("""\
apiVersion: v1
kind: ControlPlaneChaos
metadata: {name: api}
spec:
  target: apiserver
  duration: 1m
  monitoring:
    etcdLeaderElections: 3
    apiserverUnavailable: must-not-exceed-1m30s
    schedulerLeaderElections: must-not-exceed-0
""")
    assert exp.faults[0].params == {"component": "kube-apiserver", "select": "random", "signal": "KILL"}
    assert [(s.metric, s.aggregate, s.threshold) for s in exp.slos] == [
        ("etcdLeaderElections", "max", 3.0), ("apiserverUnavailable", "max", 90.0),
        ("schedulerLeaderElections", "max", 0.0)]


def test_compact_monitoring_names_the_accepted_forms() -> None:
    [problem] = problems_of("""\
apiVersion: chaos.example.com/v1
kind: ControlPlaneChaos
spec:
  target: etcd
  duration: 10s
  monitoring:
    etcdLeaderElections: "at-most-2"
""", "c.yaml")
    assert problem == ("c.yaml:7 spec.monitoring.etcdLeaderElections: 'at-most-2' is not valid; expected "
                       "must-not-exceed-N or a whole number N (both mean max N)")


def test_a_broken_file_reports_every_problem_at_once_with_its_line() -> None:
    problems = problems_of(BROKEN)
    assert len(problems) == 5
    assert "experiments/kill.yaml:11 spec.faults[0].signal: 'HUP' is not one of KILL, TERM, STOP" in problems
    assert ("experiments/kill.yaml:5 spce: unknown field; did you mean 'spec'? "
            "(allowed: apiVersion, kind, metadata, spec)") in problems
    assert "experiments/kill.yaml:15 spec.runs: 0 is too small; the minimum is 1" in problems
    assert [p.split(" ")[0] for p in problems] == [f"experiments/kill.yaml:{n}" for n in (5, 11, 12, 14, 15)]


def test_an_unknown_metric_or_enum_value_gets_a_suggestion() -> None:
    problems = problems_of(BROKEN)
    assert any(p.startswith("experiments/kill.yaml:14 spec.slo.recoveryTme: unknown metric; did you mean "
                            "'recoveryTime'?") for p in problems)
    [problem] = problems_of(COMPACT_AS_FULL.replace("kind: Experiment", "kind: Experimnet"), "e.yaml")
    assert problem == "e.yaml:2 kind: 'Experimnet' is not one of Experiment, ControlPlaneChaos, ProbeSet, GameDay; " \
                      "did you mean 'Experiment'?"


def test_a_yaml_syntax_error_is_one_problem_with_line_and_column() -> None:
    assert problems_of("apiVersion: chaoslab.io/v1alpha1\nkind: [Experiment\nspec: {}\n", "y.yaml") == [
        ("y.yaml:3:5: invalid YAML: expected ',' or ']', but got ':' "
         "(while parsing a flow sequence at line 2)")]


def test_empty_files_and_documents_that_are_not_mappings_are_problems() -> None:
    assert problems_of("# nothing yet\n", "e.yaml") == [
        ("e.yaml:1: the file is empty; expected an experiment (apiVersion: chaoslab.io/v1alpha1, kind: "
         "Experiment; or kind: ControlPlaneChaos)")]
    assert problems_of(COMPACT_AS_FULL + "---\n- a list\n", "e.yaml")[0].startswith(
        "e.yaml:12: the document is a list ([a list]); expected an experiment")


def test_unknown_api_versions_and_fault_kinds_say_what_is_known() -> None:
    text = COMPACT_AS_FULL.replace("chaoslab.io/v1alpha1", "chaoslab.io/v1").replace(
        "{kind: kill-process, component: kube-scheduler}", "{kind: explode}")
    assert problems_of(text, "e.yaml") == [
        "e.yaml:1 apiVersion: 'chaoslab.io/v1' is not supported; use chaoslab.io/v1alpha1",
        ("e.yaml:6 spec.faults[0].kind: 'explode' is not one of kill-process, partition, network-degrade, drain-node, "
         "evict-pods, node-failure, webhook-outage, cert-expiry, api-overload, disk-latency, etcd-defrag, "
         "etcd-nospace, memory-limit")]


def test_a_fault_kind_from_an_entry_point_passes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_loader, "_plugin_fault_kinds", lambda: frozenset({"blackhole"}))
    text = COMPACT_AS_FULL.replace("kill-process, component: kube-scheduler", "blackhole, a: 1")
    [exp] = load_text(text)
    assert exp.faults[0].kind == "blackhole" and exp.faults[0].params == {"a": 1}


def test_kill_process_params_are_checked_and_defaulted() -> None:
    problems = problems_of(COMPACT_AS_FULL.replace(
        "{kind: kill-process, component: kube-scheduler}",
        "{kind: kill-process, component: kube-apiserver, select: leader, count: 2, singal: TERM}"), "e.yaml")
    assert problems == [
        ("e.yaml:6 spec.faults[0].select: 'leader' is not valid; expected random, all or host:NAME "
         "(kube-apiserver has no leader)"),
        ("e.yaml:6 spec.faults[0].singal: unknown field; did you mean 'signal'? "
         "(allowed: kind, component, select, signal, count)")]
    scheduler = "component: kube-scheduler"
    [exp] = load_text(COMPACT_AS_FULL.replace(scheduler, "component: etcd, select: host:cp2"))
    assert exp.faults[0].params == {"component": "etcd", "select": "host:cp2", "signal": "KILL"}


def test_slo_values_follow_the_metric_unit_and_name_one_aggregate() -> None:
    problems = problems_of(COMPACT_AS_FULL.replace("{max: 2}", "{max: 2s}").replace(
        "{max: 45s}", "{max: 45s, p95: 30s}"), "e.yaml")
    assert problems == [
        ("e.yaml:9 spec.slo.recoveryTime: {max: 45s, p95: 30s} has 2 entries; give exactly one of max, "
         "min, p50, p90, p95, p99, e.g. {max: 30s}"),
        "e.yaml:10 spec.slo.etcdLeaderElections.max: '2s' is a string; expected a whole number (0 or more)"]


def test_every_document_of_a_file_is_one_experiment_and_lines_count_from_the_file_start() -> None:
    second = COMPACT_AS_FULL.replace("compact-scheduler", "second")
    first, other = load_text(COMPACT_AS_FULL + "---\n" + second, "two.yaml")
    assert (first.name, other.name) == ("compact-scheduler", "second")
    assert other.slos[0].where == "two.yaml:20 spec.slo.recoveryTime"


def test_a_duplicate_key_is_a_problem() -> None:
    problems = problems_of(COMPACT_AS_FULL + "  duration: 10s\n", "d.yaml")
    assert problems == [("d.yaml:11 spec.duration: duplicate key (first at line 7); YAML keeps only the "
                         "last one: remove one")]


def test_an_unknown_probe_set_is_named_with_the_known_ones() -> None:
    [problem] = problems_of(COMPACT_AS_FULL + "  probes: [etcd, control-plan]\n", "p.yaml")
    assert problem.startswith("p.yaml:11 spec.probes[1]: 'control-plan' is neither a probe set "
                              "(probes/NAME.yaml; known: control-plane")
    assert problem.endswith("did you mean 'control-plane'?")


def test_a_probe_with_inline_parameters_runs_as_written() -> None:
    from chaoslab.plan.probes import probes_for

    text = COMPACT_AS_FULL + "  probes: [etcd, {kind: workloads, selector: app=web, interval: 1s}, lease, apiserver]\n"
    [experiment] = load_text(text, "p.yaml")
    assert experiment.probes == ("etcd", {"kind": "workloads", "selector": "app=web", "interval": 1.0}, "lease",
                                 "apiserver")
    assert probes_for(experiment)[1] == {"kind": "workloads", "selector": "app=web", "interval": 1.0,
                                         "namespaces": ["default"]}


def test_an_inline_probe_with_a_wrong_parameter_names_it() -> None:
    [problem] = problems_of(COMPACT_AS_FULL + "  probes: [{kind: workloads, selectr: app=web}]\n", "p.yaml")
    assert problem.startswith("p.yaml:11 spec.probes[0].selectr: unknown field"), problem


def test_validate_paths_recurses_and_collects_every_problem(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.yaml").write_text(COMPACT_AS_FULL)
    (tmp_path / "sub" / "bad.yml").write_text(BROKEN)
    (tmp_path / "sub" / "notes.txt").write_text("not yaml")
    experiments, problems = validate_paths([tmp_path, tmp_path / "missing.yaml"])
    assert [e.name for e in experiments] == ["compact-scheduler"]
    assert len(problems) == 6
    assert problems[0].startswith(f"{tmp_path / 'sub' / 'bad.yml'}:5 spce: unknown field")
    assert problems[-1] == f"{tmp_path / 'missing.yaml'}: no such file or directory"


def test_validate_paths_accepts_probe_sets_but_load_does_not() -> None:
    experiments, problems = validate_paths([REPO / "probes"])
    assert (experiments, problems) == ([], [])
    with pytest.raises(SpecError, match="is a probe set, not an experiment"):
        load(REPO / "probes" / "control-plane.yaml")


def test_validate_paths_skips_the_kubernetes_manifests_experiments_need(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "web.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    assert validate_paths([tmp_path])[1] == [f"{tmp_path}: no *.yaml or *.yml files in this directory"]
