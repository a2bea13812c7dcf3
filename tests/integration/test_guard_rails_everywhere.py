"""One plan, one executor: every way of running an experiment meets the same guard rails (issue 13). The
lab's own credentials under a context named like a staging cluster make a kubeconfig target that is not
the lab and is on no allow-list; without consent, a game day, a Chaos Toolkit `chaos run` of an exported
experiment and a Chaos Toolkit action call are each refused with `chaoslab run`'s own message, and no Node
is cordoned; with consent (`--yes`, `chaoslab_yes`, `yes`) or the allow-list they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from waiting import eventually
from workloads import deployment, namespace, ready_pods

from chaoslab.chaostoolkit import actions
from chaoslab.cli import main
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import SpecError
from chaoslab.lab.config import LabLayout

ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).with_name("chaos")
CONTEXT = "staging-eu"
REFUSED = f"kubeconfig context '{CONTEXT}' is not the lab and is not allowed"


@pytest.fixture
def staging(lab: LabLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The lab's kubeconfig with its context renamed: a cluster chaoslab must not touch unasked."""
    config = yaml.safe_load(lab.kubeconfig.read_text())
    for ctx in config["contexts"]:
        ctx["name"] = CONTEXT
    config["current-context"] = CONTEXT
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("CHAOSLAB_CONFIG", str(tmp_path / "config.yaml"))  # no allow-list
    return path


@pytest.fixture
def web(api: KubeApi) -> Iterator[str]:
    with namespace(api, "rails") as ns:
        deployment(api, ns, "web", 2)
        eventually(lambda: ready_pods(api, ns, "web", 2), 90, "2 web pods Ready")
        yield ns


def drain(ns: str) -> dict[str, Any]:
    """drain-node's parameters: one simulated node, for the workload in `ns`."""
    return {"selector": "chaoslab.io/simulated=true", "namespaces": [ns], "count": 1,
            "timeout": "60s", "retryInterval": "1s"}


def experiment_file(tmp_path: Path, ns: str) -> Path:
    doc = {"apiVersion": "chaoslab.io/v1alpha1", "kind": "Experiment",
           "metadata": {"name": "rails-drain", "description": "Drain one simulated node."},
           "spec": {"steadyState": ["apiserver-ready"], "faults": [{"kind": "drain-node", **drain(ns)}],
                    "duration": "2s", "settle": "1s", "recoveryTimeout": "60s", "probes": ["apiserver"],
                    "slo": {"apiserverUnavailable": {"max": "60s"}}}}
    path = tmp_path / "rails-drain.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def cordoned(api: KubeApi) -> list[str]:
    return [n["metadata"]["name"] for n in api.get("/api/v1/nodes")["items"] if n["spec"].get("unschedulable")]


def test_chaoslab_run_refuses_a_context_not_allowed(staging: Path, web: str, api: KubeApi, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(experiment_file(tmp_path, web)), "--target", f"kubeconfig:{CONTEXT}", "--no-live",
                 "--runs-dir", str(tmp_path / "runs")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and REFUSED in err and "nothing was changed" in err, err
    assert cordoned(api) == []


@pytest.mark.slow
def test_a_game_day_is_refused_before_its_first_step_and_runs_with_yes(
        staging: Path, web: str, api: KubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiment = experiment_file(tmp_path, web)
    day = tmp_path / "day.yaml"
    day.write_text(yaml.safe_dump({"apiVersion": "chaoslab.io/v1alpha1", "kind": "GameDay",
                                   "metadata": {"name": "rails-day"},
                                   "spec": {"steps": [{"name": "drain", "file": experiment.name}]}}))
    argv = ["gameday", "run", str(day), "--target", f"kubeconfig:{CONTEXT}", "--no-live", "--runs-dir",
            str(tmp_path / "runs")]
    code = main(argv)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and f"step drain: {REFUSED}" in err and "no step of the game day ran" in err, err
    assert cordoned(api) == []
    assert not (tmp_path / "runs").exists()
    code = main([*argv, "--yes"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.out + captured.err  # judged: it ran
    [day_dir] = list((tmp_path / "runs").iterdir())
    record = json.loads((day_dir / "gameday.json").read_text())
    assert record["steps"][0]["status"] in ("passed", "failed")
    assert cordoned(api) == []  # and the drain was reverted


def test_a_chaos_toolkit_action_is_refused_without_consent_and_injects_with_it(
        staging: Path, web: str, api: KubeApi, tmp_path: Path) -> None:
    runs = str(tmp_path / "runs")
    with pytest.raises(SpecError, match=REFUSED):
        actions.inject_fault("drain-node", drain(web), target=f"kubeconfig:{CONTEXT}", key="rails", runs_dir=runs)
    assert cordoned(api) == []
    assert not (tmp_path / "runs" / "chaostoolkit-rails").exists()
    out = actions.inject_fault("drain-node", drain(web), target=f"kubeconfig:{CONTEXT}", key="rails",
                               runs_dir=runs, yes=True)
    try:
        assert len(cordoned(api)) == 1
        assert (Path(out["pending"]) / "undo.json").exists()
    finally:
        reverted = actions.revert_fault(target=f"kubeconfig:{CONTEXT}", key="rails", runs_dir=runs)
    assert [r["fault"] for r in reverted["reverted"]] == ["drain-node"]
    assert cordoned(api) == []
    # The allow-list is consent too.
    (tmp_path / "config.yaml").write_text(f"allow: {{contexts: [{CONTEXT}]}}\n")
    actions.inject_fault("drain-node", drain(web), target=f"kubeconfig:{CONTEXT}", key="rails", runs_dir=runs)
    actions.revert_fault(target=f"kubeconfig:{CONTEXT}", key="rails", runs_dir=runs)
    assert cordoned(api) == []


@pytest.mark.slow
def test_chaos_run_of_an_exported_experiment_is_refused_without_consent_and_runs_with_it(
        staging: Path, web: str, api: KubeApi, tmp_path: Path) -> None:
    if not CHAOS.exists():
        pytest.skip(f"no `chaos` next to {sys.executable}")
    exported = tmp_path / "rails.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "chaoslab", "export", "--to", "chaostoolkit",
                    str(experiment_file(tmp_path, web)), "-o", str(exported)], check=True, capture_output=True,
                   timeout=60, env=env)

    def chaos_run(*extra: str) -> dict[str, Any]:
        journal = tmp_path / "journal.json"
        journal.unlink(missing_ok=True)
        proc = subprocess.run([str(CHAOS), "run", str(exported), "--journal-path", str(journal),
                               "--var", f"chaoslab_target=kubeconfig:{CONTEXT}",
                               "--var", f"chaoslab_runs_dir={tmp_path / 'runs'}", *extra],
                              capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path, env=env)
        assert journal.exists(), proc.stdout + proc.stderr
        data: dict[str, Any] = json.loads(journal.read_text())
        data["_log"] = proc.stdout + proc.stderr
        return data

    refused = chaos_run()
    assert refused["status"] != "completed", refused["_log"]
    assert REFUSED in refused["_log"], refused["_log"]
    assert cordoned(api) == []
    ran = chaos_run("--var", "chaoslab_yes=true")
    assert ran["status"] == "completed", ran["_log"]
    assert "verdict" in ran["chaoslab"], ran["chaoslab"]
    assert cordoned(api) == []
