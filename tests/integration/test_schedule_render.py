"""`chaoslab schedule render` against the lab's real apiserver (Kubernetes 1.20): the CronJob version is
detected, and every rendered object passes a server-side dry run (POST ?dryRun=All), so nothing is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.cli import main
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.lab.config import LabLayout
from chaoslab.ops import schedule

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "chaoslab-sched-itest"


@pytest.fixture(scope="module")
def namespaces(api: KubeApi) -> Any:
    """The namespaces the namespaced objects go to must exist for a dry run of them; made for real here,
    removed afterwards (only those this test made)."""
    made = []
    for ns in (NAMESPACE, schedule.CANARY_NAMESPACE):
        if api.request("GET", f"/api/v1/namespaces/{ns}").status_code == 404:
            api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            made.append(ns)
    yield
    for ns in made:
        api.delete(f"/api/v1/namespaces/{ns}")


def _render(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["schedule", "render", str(path), "--cron", "0 10 * * 2", "--namespace", NAMESPACE, *args]) == 0
    return [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]


def test_the_lab_serves_cronjobs_as_batch_v1beta1_only(api: KubeApi) -> None:
    assert schedule.served_cronjob_version(api) == "batch/v1beta1"
    batch_v1 = [r["name"] for r in api.get("/apis/batch/v1")["resources"]]
    assert "jobs" in batch_v1 and "cronjobs" not in batch_v1  # why the group version alone cannot tell


def test_rendered_cronjob_passes_the_apiservers_dry_run(lab: LabLayout, api: KubeApi, namespaces: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    docs = _render(REPO / "experiments/scheduler-leader-kill.yaml", capsys, "--kubeconfig", str(lab.kubeconfig),
                   "--results-pvc", "chaoslab-results")
    assert [d["kind"] for d in docs][-1] == "CronJob" and docs[-1]["apiVersion"] == "batch/v1beta1"
    assert schedule.dry_run(api, docs) == []
    # Dry run made nothing.
    assert api.request("GET", f"/apis/batch/v1beta1/namespaces/{NAMESPACE}/cronjobs/{docs[-1]['metadata']['name']}"
                       ).status_code == 404
    assert api.request("GET", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{docs[-1]['metadata']['name']}-probes"
                       ).status_code == 404


def test_rendered_game_day_with_its_experiment_files_passes_the_dry_run(
        tmp_path: Path, api: KubeApi, namespaces: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "exp").mkdir()
    for name in ("scheduler-leader-kill.yaml", "etcd-leader-kill.yaml"):
        (tmp_path / "exp" / name).write_text((REPO / "experiments" / name).read_text())
    day = tmp_path / "weekly.yaml"
    day.write_text("apiVersion: chaoslab.io/v1alpha1\nkind: GameDay\nmetadata: {name: weekly}\nspec:\n"
                   "  steps:\n    - file: exp/scheduler-leader-kill.yaml\n    - file: exp/etcd-leader-kill.yaml\n")
    docs = _render(day, capsys, "--api-version", "batch/v1beta1")
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert set(config["data"]) == {"weekly.yaml", "scheduler-leader-kill.yaml", "etcd-leader-kill.yaml"}
    assert docs[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][:3] == \
        ["gameday", "run", "/etc/chaoslab/spec/weekly.yaml"]
    assert schedule.dry_run(api, docs) == []


@pytest.mark.parametrize("day", sorted((REPO / "experiments" / "gamedays").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_game_day_renders_and_passes_the_dry_run(
        day: Path, lab: LabLayout, api: KubeApi, namespaces: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The project's own game days, whose steps live in `../`: packed with their experiments, accepted as is."""
    docs = _render(day, capsys, "--kubeconfig", str(lab.kubeconfig))
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    referenced = {s["file"] for s in yaml.safe_load(day.read_text())["spec"]["steps"] if "file" in s}
    assert day.name in config["data"] and len(config["data"]) == 1 + len(referenced)  # inline steps pack nothing
    assert schedule.dry_run(api, docs) == []


def test_dry_run_really_validates(api: KubeApi, namespaces: Any, capsys: pytest.CaptureFixture[str]) -> None:
    docs = _render(REPO / "experiments/scheduler-leader-kill.yaml", capsys, "--api-version", "batch/v1beta1")
    docs[-1]["spec"]["concurrencyPolicy"] = "Sometimes"
    [(what, problem)] = schedule.dry_run(api, docs)
    assert what.startswith("CronJob/") and "concurrencyPolicy" in problem
    # batch/v1 CronJob is not served by 1.20: the default for newer clusters is refused here, as documented.
    docs = _render(REPO / "experiments/scheduler-leader-kill.yaml", capsys, "--api-version", "batch/v1")
    [(what, problem)] = schedule.dry_run(api, docs)
    assert what.startswith("CronJob/") and "404" in problem
