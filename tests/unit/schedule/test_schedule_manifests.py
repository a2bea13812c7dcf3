"""`chaoslab schedule render`: the CronJob and its objects, the GitHub and GitLab schedules (valid YAML,
the right structure), the file kind deciding the command, and the refusals."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.cli import main
from chaoslab.errors import SpecError
from chaoslab.ops import schedule
from chaoslab.spec.gameday import GameDay, load_game_day

REPO = Path(__file__).resolve().parents[3]
EXPERIMENT = REPO / "experiments/scheduler-leader-kill.yaml"


def render(capsys: pytest.CaptureFixture[str], *args: str) -> list[Any]:
    assert main(["schedule", "render", *args]) == 0
    return [d for d in yaml.safe_load_all(capsys.readouterr().out) if d is not None]


@pytest.fixture
def gameday(tmp_path: Path) -> Path:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "kill.yaml").write_text(EXPERIMENT.read_text())
    day = tmp_path / "weekly.yaml"
    day.write_text("apiVersion: chaoslab.io/v1alpha1\nkind: GameDay\nmetadata: {name: weekly}\n"
                   "spec:\n  steps:\n    - file: exp/kill.yaml\n    - file: exp/kill.yaml\n      name: again\n")
    return day


def test_cronjob_has_the_guard_rails(capsys: pytest.CaptureFixture[str]) -> None:
    docs = render(capsys, str(EXPERIMENT), "--cron", "0 10 * * 2")
    kinds = [d["kind"] for d in docs]
    assert kinds[:3] == ["Namespace", "ServiceAccount", "Namespace"] and kinds[-2:] == ["ConfigMap", "CronJob"]
    assert {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} <= set(kinds[3:-2])
    cron = docs[-1]
    assert cron["apiVersion"] == "batch/v1"
    spec = cron["spec"]
    assert spec["schedule"] == "0 10 * * 2" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 5
    assert spec["startingDeadlineSeconds"] == 600
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == cron["metadata"]["name"]
    [c] = pod["containers"]
    assert c["args"][:2] == ["run", "/etc/chaoslab/spec/scheduler-leader-kill.yaml"]
    assert "--no-live" in c["args"] and c["args"][c["args"].index("--runs-dir") + 1] == "/results/runs"
    assert c["resources"]["limits"] and c["resources"]["requests"]
    assert c["securityContext"]["runAsNonRoot"] and not c["securityContext"]["allowPrivilegeEscalation"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["results"] == {"name": "results", "emptyDir": {}}
    assert volumes["spec"]["configMap"]["name"] == docs[-2]["metadata"]["name"]
    assert docs[-2]["data"]["scheduler-leader-kill.yaml"] == EXPERIMENT.read_text()


def test_rbac_is_deploy_rbac_bound_to_the_jobs_own_account(capsys: pytest.CaptureFixture[str]) -> None:
    docs = render(capsys, str(EXPERIMENT), "--cron", "@daily", "--namespace", "chaos", "--name", "nightly")
    shipped = [d for d in schedule.shipped_rbac() if d["kind"].endswith("Role")]
    roles = [d for d in docs if d["kind"].endswith("Role")]
    # The same rules as the roles the least-privilege test proves, under names of this job's own.
    assert [r["rules"] for r in roles] == [r["rules"] for r in shipped]
    assert all(r["metadata"]["name"].startswith("nightly-") for r in roles)
    grants = {(g, res, v) for role in roles for rule in role["rules"] for g in rule.get("apiGroups", [])
              for res in rule["resources"] for v in rule["verbs"]}
    assert not any(v == "*" or res == "*" or v in ("escalate", "bind", "impersonate") for _, res, v in grants)
    assert ("", "secrets", "get") not in grants and ("", "namespaces", "create") not in grants
    bindings = [d for d in docs if d["kind"].endswith("Binding")]
    assert bindings and all(b["subjects"] == [{"kind": "ServiceAccount", "name": "nightly", "namespace": "chaos"}]
                            for b in bindings)
    assert {b["roleRef"]["name"] for b in bindings} <= {r["metadata"]["name"] for r in roles}
    assert not any(d["kind"] == "Namespace" and d["metadata"]["name"] == "chaoslab" for d in docs)


def test_game_day_runs_gameday_run_with_its_experiment_files_mounted(
        gameday: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = render(capsys, str(gameday), "--cron", "0 10 * * 2", "--results-pvc", "results", "--name", "weekly",
                  "--api-version", "batch/v1beta1")
    config, cron = docs[-2], docs[-1]
    assert set(config["data"]) == {"weekly.yaml", "kill.yaml"}  # the file two steps name, once
    assert config["data"]["weekly.yaml"].count('- file: "kill.yaml"') == 2
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][:3] == ["gameday", "run", "/etc/chaoslab/spec/weekly.yaml"]
    items = next(v for v in pod["volumes"] if v["name"] == "spec")["configMap"]["items"]
    assert {"key": "kill.yaml", "path": "kill.yaml"} in items
    assert next(v for v in pod["volumes"] if v["name"] == "results")["persistentVolumeClaim"] == {"claimName": "results"}
    assert cron["apiVersion"] == "batch/v1beta1" and cron["metadata"]["name"] == "weekly"


def test_time_zone_needs_batch_v1() -> None:
    job = schedule.Job.from_file(EXPERIMENT, "0 10 * * 2", time_zone="Europe/Berlin")
    assert schedule.render_cronjob(job)[-1]["spec"]["timeZone"] == "Europe/Berlin"
    old = schedule.Job.from_file(EXPERIMENT, "0 10 * * 2", time_zone="Europe/Berlin", api_version="batch/v1beta1")
    with pytest.raises(SpecError, match="spec.timeZone needs batch/v1"):
        schedule.render_cronjob(old)


@pytest.mark.parametrize("cron", ["0 10 * *", "every tuesday", "0 10 * * 2 2024", "0 1o * * 2;"])
def test_a_bad_cron_is_refused(cron: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "render", str(EXPERIMENT), "--cron", cron]) == 2
    assert "not a cron schedule" in capsys.readouterr().err


def test_a_broken_experiment_or_unknown_kind_is_refused_before_rendering(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXPERIMENT.read_text().replace("kind: kill-process", "kind: kill-proces"))
    with pytest.raises(SpecError):
        schedule.Job.from_file(bad, "0 10 * * 2")
    other = tmp_path / "probes.yaml"
    other.write_text("apiVersion: chaoslab.io/v1alpha1\nkind: ProbeSet\n")
    with pytest.raises(SpecError, match="cannot be scheduled"):
        schedule.Job.from_file(other, "0 10 * * 2")


def unpack(docs: list[Any], into: Path) -> Path:
    """Lay a rendered ConfigMap out as the pod mounts it (items: key → path); the file the CronJob runs."""
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    pod = docs[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    items = next(v for v in pod["volumes"] if v["name"] == "spec")["configMap"]["items"]
    assert sorted(i["key"] for i in items) == sorted(config["data"])
    into.mkdir()
    for item in items:
        assert "/" not in item["path"] and not item["path"].startswith(".."), item
        (into / item["path"]).write_text(config["data"][item["key"]])
    return into / Path(pod["containers"][0]["args"][2]).relative_to(schedule.SPEC_DIR)


def placeless(value: Any) -> Any:
    """A loaded object without the places it was read from (`source` files, `where` file:line)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: None if f.name == "source" else "" if f.name == "where"
                                             else placeless(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, tuple):
        return tuple(placeless(v) for v in value)
    return value


def same_day(packed: GameDay, original: GameDay) -> None:
    """The same steps, in the same order, with the same experiments (where they were read from aside)."""
    assert [s.name for s in packed.steps] == [s.name for s in original.steps]
    for a, b in zip(packed.steps, original.steps, strict=True):
        assert placeless(a) == placeless(b)
    assert placeless((packed.window, packed.abort, packed.target)) == placeless((original.window, original.abort,
                                                                                original.target))


@pytest.mark.parametrize("day", sorted((REPO / "experiments" / "gamedays").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_game_day_renders_and_its_configmap_runs_as_the_same_day(
        day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = render(capsys, str(day), "--cron", "0 10 * * 2", "--api-version", "batch/v1beta1")
    same_day(load_game_day(unpack(docs, tmp_path / "spec")), load_game_day(day))


def test_files_outside_the_game_days_directory_are_packed_under_flat_names_without_collisions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for where in ("a", "b", "days"):
        (tmp_path / where).mkdir()
    kill = EXPERIMENT.read_text()
    (tmp_path / "a" / "kill.yaml").write_text(kill.replace("name: scheduler-leader-kill", "name: kill-a"))
    (tmp_path / "b" / "kill.yaml").write_text(kill.replace("name: scheduler-leader-kill", "name: kill-b"))
    (tmp_path / "days" / "kill.yaml").write_text(kill.replace("name: scheduler-leader-kill", "name: kill-here"))
    (tmp_path / "days" / "day.yaml").write_text(kill.replace("name: scheduler-leader-kill", "name: not-the-day"))
    day = tmp_path / "days" / "day.yaml"
    day.write_text("# the day\napiVersion: chaoslab.io/v1alpha1\nkind: GameDay\nmetadata: {name: day}\nspec:\n"
                   "  steps:\n    - file: ../a/kill.yaml   # first\n    - {file: '../b/kill.yaml', after: [kill-a]}\n"
                   "    - file: kill.yaml\n    - file: ../days/../a/kill.yaml\n      name: kill-a-again\n")
    docs = render(capsys, str(day), "--cron", "0 10 * * 2", "--api-version", "batch/v1beta1")
    data = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    # one key per file (../a/kill.yaml spelt twice is one), none the game day's own name
    assert set(data) == {"day.yaml", "kill.yaml", "up__b__kill.yaml", "kill-2.yaml"}
    assert "name: kill-a" in data["kill.yaml"] and "name: kill-b" in data["up__b__kill.yaml"]
    assert "name: kill-here" in data["kill-2.yaml"]
    # only the file names changed, in place: comments, flow style and the rest stay as written
    assert data["day.yaml"] == day.read_text().replace("../a/kill.yaml   #", '"kill.yaml"   #').replace(
        "'../b/kill.yaml'", '"up__b__kill.yaml"').replace("file: kill.yaml", 'file: "kill-2.yaml"').replace(
        "../days/../a/kill.yaml", '"kill.yaml"')
    same_day(load_game_day(unpack(docs, tmp_path / "spec")), load_game_day(day))


def test_flat_names_are_valid_keys_and_mount_paths() -> None:
    taken = {"day.yaml"}
    for ref in ("../x/day.yaml", "..weird name[1].yaml", "/abs/" + "l" * 300 + ".yaml", "day.yaml"):
        name = schedule.flat_name(ref, taken)
        assert re.fullmatch(r"[-._a-zA-Z0-9]+", name) and not name.startswith(".") and len(name) <= 253, name
        assert name not in taken
        taken.add(name)


def test_a_game_day_whose_step_file_is_missing_is_refused_with_its_line(tmp_path: Path) -> None:
    day = tmp_path / "d.yaml"
    day.write_text("apiVersion: chaoslab.io/v1alpha1\nkind: GameDay\nmetadata: {name: d}\nspec:\n"
                   "  steps:\n    - file: ../nowhere.yaml\n")
    with pytest.raises(SpecError, match=r"d.yaml:6"):
        schedule.Job.from_file(day, "0 10 * * 2")


def test_github_workflow_is_scheduled_one_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    [wf] = render(capsys, str(EXPERIMENT), "--cron", "0 10 * * 2", "--format", "github",
                  "--source", "experiments/scheduler-leader-kill.yaml")
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as "on".
    on = wf.get("on", wf.get(True))
    assert on["schedule"] == [{"cron": "0 10 * * 2"}] and "workflow_dispatch" in on
    assert wf["concurrency"]["cancel-in-progress"] is False
    steps = wf["jobs"]["chaos"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    run = next(s for s in steps if s.get("id") == "chaos")["run"]
    assert ".venv/bin/chaoslab run experiments/scheduler-leader-kill.yaml --no-live --runs-dir runs" in run
    assert "--target kubeconfig" in run and 'echo "code=$?"' in run
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") and s["if"] == "always()" for s in steps)
    assert "steps.chaos.outputs.code" in steps[-1]["run"]


def test_gitlab_job_runs_only_in_scheduled_pipelines(gameday: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "render", str(gameday), "--cron", "0 10 * * 2", "--format", "gitlab",
                 "--time-zone", "Europe/Berlin", "--source", "gamedays/weekly.yaml", "--run-target", ""]) == 0
    text = capsys.readouterr().out
    assert "cron_timezone=Europe/Berlin" in text and 'cron="0 10 * * 2"' in text
    [doc] = [d for d in yaml.safe_load_all(text) if d]
    [(name, job)] = doc.items()
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert job["resource_group"] == name
    assert job["script"][-1] == ".venv/bin/chaoslab gameday run gamedays/weekly.yaml --no-live --runs-dir runs"
    assert job["artifacts"]["when"] == "always" and "runs/" in job["artifacts"]["paths"]


def test_served_version_is_read_from_the_resource_list() -> None:
    class Api:
        def __init__(self, served: dict[str, list[str]]) -> None:
            self.served = served

        def get(self, path: str) -> dict[str, Any]:
            return {"resources": [{"name": n} for n in self.served.get(path.removeprefix("/apis/"), [])]}

    assert schedule.served_cronjob_version(Api({"batch/v1": ["jobs"], "batch/v1beta1": ["cronjobs"]})) == \
        "batch/v1beta1"
    assert schedule.served_cronjob_version(Api({"batch/v1": ["jobs", "cronjobs"]})) == "batch/v1"


def test_names_and_paths() -> None:
    assert schedule.dns_name("chaoslab-Weekly Game_Day") == "chaoslab-weekly-game-day"
    assert len(schedule.dns_name("x" * 80)) == 52
    assert schedule.api_path({"apiVersion": "batch/v1beta1", "kind": "CronJob",
                              "metadata": {"name": "a", "namespace": "n"}}) == "/apis/batch/v1beta1/namespaces/n/cronjobs"
    assert schedule.api_path({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}) == "/api/v1/namespaces"
