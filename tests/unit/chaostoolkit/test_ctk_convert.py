"""`chaoslab export --to chaostoolkit` and the import of Chaos Toolkit experiments: pure mapping, no cluster."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from chaoslab.cli import main
from chaoslab.errors import SpecError
from chaoslab.spec import load, load_text
from chaoslab.spec.chaostoolkit import (
    ACTIONS,
    CONTROL,
    PROBES,
    control_experiment,
    export_notes,
    to_chaostoolkit,
)
from chaoslab.spec.loader import parse
from chaoslab.spec.model import TargetSpec

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted(p for p in (ROOT / "experiments").glob("*.yaml"))


def ctk(**overrides: Any) -> dict[str, Any]:
    """A small Chaos Toolkit experiment written by hand, as a Chaos Toolkit user would."""
    doc: dict[str, Any] = {
        "title": "pause etcd follower",
        "configuration": {"chaoslab_target": "lab:other"},
        "steady-state-hypothesis": {"title": "healthy", "probes": [
            {"type": "probe", "name": "ss", "tolerance": True, "provider": {
                "type": "python", "module": PROBES, "func": "steady_state",
                "arguments": {"conditions": ["etcd-quorum"], "target": "${chaoslab_target}"}}}]},
        "method": [{"type": "action", "name": "pause", "provider": {
            "type": "python", "module": ACTIONS, "func": "kill_process",
            "arguments": {"component": "etcd", "select": "follower", "signal": "STOP",
                          "target": "${chaoslab_target}"}}, "pauses": {"after": 12}}],
        "rollbacks": [{"type": "action", "name": "resume", "provider": {
            "type": "python", "module": ACTIONS, "func": "revert_fault", "arguments": {}}}],
        "controls": [{"name": "chaoslab", "provider": {"type": "python", "module": CONTROL,
                                                       "arguments": {"slo": {"etcdLeaderElections": {"max": 0}}}}}],
    }
    doc.update(overrides)
    return doc


def line_of(doc: dict[str, Any], *path: str | int) -> int:
    """The line of a key in the file `load_ctk` writes."""
    [parsed], _ = parse(json.dumps(doc, indent=2), "x.json")
    return parsed.lines[path]


def load_ctk(doc: dict[str, Any], name: str = "x.json") -> Any:
    [exp] = load_text(json.dumps(doc, indent=2), name)
    return exp


def test_export_maps_faults_to_actions_the_duration_to_a_pause_and_undos_to_rollbacks() -> None:
    [exp] = load(ROOT / "experiments/etcd-follower-pause.yaml")
    out = to_chaostoolkit(exp)
    [action] = out["method"]
    assert action["provider"]["module"] == ACTIONS and action["provider"]["func"] == "inject_fault"
    args = action["provider"]["arguments"]
    assert (args["kind"], args["params"]["signal"], args["params"]["select"]) == ("kill-process", "STOP", "follower")
    assert action["pauses"] == {"after": 15.0} and args["duration"] == 15.0
    [rollback] = out["rollbacks"]
    assert rollback["provider"]["func"] == "revert_fault"
    assert rollback["provider"]["arguments"]["key"] == args["key"] == "etcd-follower-pause-1"
    [probe] = out["steady-state-hypothesis"]["probes"]
    assert probe["tolerance"] is True
    assert probe["provider"]["arguments"]["conditions"] == ["apiserver-ready", "etcd-quorum", "etcd-leader"]
    [control] = out["controls"]
    assert control["provider"]["module"] == CONTROL
    assert control["provider"]["arguments"]["slo"]["etcdTimeWithoutLeader"] == {"max": "0s"}
    assert control["provider"]["arguments"]["slo"]["etcdLeaderElections"] == {"max": 0}
    assert out["runtime"] == {"rollbacks": {"strategy": "always"}}
    assert out["configuration"]["chaoslab_target"] == "lab"


def test_export_reverts_several_faults_in_reverse_order() -> None:
    [exp] = load_text("apiVersion: chaoslab.io/v1alpha1\nkind: Experiment\nmetadata: {name: two}\nspec:\n"
                      "  faults:\n    - {kind: kill-process, component: etcd, select: follower, signal: STOP}\n"
                      "    - {kind: partition, select: leader, traffic: peer}\n  duration: 20s\n")
    out = to_chaostoolkit(exp)
    assert [a["provider"]["arguments"]["key"] for a in out["method"]] == ["two-1", "two-2"]
    assert [r["provider"]["arguments"]["key"] for r in out["rollbacks"]] == ["two-2", "two-1"]
    assert "pauses" not in out["method"][0] and out["method"][1]["pauses"] == {"after": 20.0}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_experiment_survives_export_and_import(path: Path) -> None:
    for exp in load(path):
        back = load_ctk(to_chaostoolkit(exp), "exported.json")
        for f in dataclasses.fields(exp):
            if f.name in ("raw", "source"):
                continue
            mine, theirs = getattr(exp, f.name), getattr(back, f.name)
            if f.name == "target":  # no target means the running lab `lab`: Chaos Toolkit's default says so
                mine = mine or TargetSpec("lab", {})
            if f.name == "description" and not mine:  # Chaos Toolkit needs one: export writes what it does
                mine = f"chaoslab experiment {exp.name}: {exp.faults[0].kind} for {exp.duration:g}s, judged against its SLOs."
            if f.name in ("faults", "slos"):
                mine = [dataclasses.replace(x, where="") for x in mine]
                theirs = [dataclasses.replace(x, where="") for x in theirs]
            if f.name == "workload":  # not carried over: the export says to apply the manifests first
                assert theirs is None and (mine is None or export_notes(exp)), f.name
                continue
            assert mine == theirs, f.name


def test_import_maps_a_hand_written_experiment() -> None:
    doc = ctk()
    exp = load_ctk(doc)
    assert exp.name == "pause-etcd-follower"
    [fault] = exp.faults
    assert fault.kind == "kill-process" and fault.params["signal"] == "STOP" and fault.params["select"] == "follower"
    assert fault.where == (f"x.json:{line_of(doc, 'method', 0, 'provider', 'arguments')} "
                          "method[0].provider.arguments")
    assert exp.duration == 12.0
    assert exp.steady_state == ("etcd-quorum",)
    assert exp.target is not None and exp.target.params == {"name": "other"}
    assert [(s.metric, s.threshold) for s in exp.slos] == [("etcdLeaderElections", 0.0)]


def test_import_refuses_what_it_cannot_map_with_file_line_path_and_why() -> None:
    doc = ctk()
    doc["method"].append({"type": "action", "name": "shell", "provider": {"type": "process", "path": "kill"}})
    doc["method"].append({"type": "action", "name": "k8s", "provider": {
        "type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods"}})
    doc["steady-state-hypothesis"]["probes"].append({"type": "probe", "name": "http", "tolerance": 200,
                                                     "provider": {"type": "http", "url": "http://x"}})
    doc["controls"].append({"name": "logging", "provider": {"type": "python", "module": "chaosaddons.controls"}})
    with pytest.raises(SpecError) as err:
        load_ctk(doc)
    problems = err.value.problems
    assert len(problems) == 4, problems
    assert any(p.startswith("x.json:") and " method[1].provider: a process provider cannot be mapped" in p
               for p in problems), problems
    assert any(" method[2].provider.module: 'chaosk8s.pod.actions' is not chaoslab's" in p for p in problems)
    assert any(" steady-state-hypothesis.probes[1].provider: a http provider" in p for p in problems)
    assert any(" controls[1]: control 'logging' is not chaoslab's" in p for p in problems)


def test_import_reports_bad_fault_parameters_at_their_place_in_the_chaos_toolkit_file() -> None:
    doc = ctk()
    doc["method"][0]["provider"]["arguments"]["signal"] = "HUP"
    with pytest.raises(SpecError) as err:
        load_ctk(doc)
    [problem] = err.value.problems
    line = line_of(doc, "method", 0, "provider", "arguments", "signal")
    assert problem.startswith(f"x.json:{line} method[0].provider.arguments.signal: 'HUP' is not one of KILL, "
                              "TERM, STOP")


def test_import_needs_a_pause_and_a_known_configuration() -> None:
    doc = ctk()
    del doc["method"][0]["pauses"]
    doc["method"][0]["provider"]["arguments"]["target"] = "${nowhere}"
    with pytest.raises(SpecError) as err:
        load_ctk(doc)
    text = "\n".join(err.value.problems)
    assert "${nowhere} is not in the experiment's configuration" in text
    assert "nothing says how long the faults hold" in text


def test_import_reads_environment_configuration_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSLAB_TEST_TARGET", raising=False)
    exp = load_ctk(ctk(configuration={"chaoslab_target": {"type": "env", "key": "CHAOSLAB_TEST_TARGET",
                                                          "default": "lab:fromdefault"}}))
    assert exp.target is not None and exp.target.params == {"name": "fromdefault"}


def test_control_experiment_judges_other_extensions_methods_with_a_placeholder_fault() -> None:
    doc = ctk(method=[{"type": "action", "name": "k8s", "pauses": {"after": 7},
                       "provider": {"type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods"}}])
    exp = control_experiment(doc, {"slo": {"recoveryTime": {"max": "30s"}}, "steadyState": ["apiserver-ready"]})
    assert [f.kind for f in exp.faults] == ["chaostoolkit-method"]
    assert exp.duration == 7.0
    assert exp.steady_state == ("apiserver-ready",)
    assert [(s.metric, s.threshold) for s in exp.slos] == [("recoveryTime", 30.0)]


def test_export_command_writes_json_that_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kill.json"
    assert main(["export", "--to", "chaostoolkit", str(ROOT / "experiments/etcd-leader-kill.yaml"), "-o",
                 str(out)]) == 0
    assert json.loads(out.read_text())["title"] == "etcd-leader-kill"
    assert main(["validate", str(out)]) == 0
    assert "etcd-leader-kill (1 fault(s), 5 SLO(s))" in capsys.readouterr().out
