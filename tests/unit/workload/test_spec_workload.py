"""`spec.workload`: manifests read with the experiment (problems with file and line), objects created with
their undo on disk first, existing objects left alone, everything created deleted at the end or on a
failure."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeTarget

from chaoslab.clients.kubeapi import ApiError
from chaoslab.errors import SpecError
from chaoslab.execute.rundir import RunDir
from chaoslab.execute.workload import WorkloadNotReady, deploy, not_ready, remove
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import make_plan
from chaoslab.spec.loader import load
from chaoslab.spec.workload import Workload

EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: drain}
spec:
  faults: [{kind: drain-node, selector: chaoslab.io/simulated=true, namespaces: [shop]}]
  duration: 5s
  workload:
    manifests: [m/web.yaml]
    readyTimeout: 30s
"""

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 2}
"""


def write(tmp_path: Path, manifest: str = MANIFEST) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "web.yaml").write_text(manifest)
    path = tmp_path / "drain.yaml"
    path.write_text(EXPERIMENT)
    return path


def test_manifests_are_read_relative_to_the_experiment(tmp_path: Path) -> None:
    [exp] = load(write(tmp_path))
    assert exp.workload is not None
    assert [o["kind"] for o in exp.workload.objects] == ["Namespace", "Deployment"]
    assert exp.workload.ready_timeout == 30.0 and not exp.workload.keep


def test_a_kind_chaoslab_cannot_create_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, MANIFEST + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    with pytest.raises(SpecError) as err:
        load(path)
    [problem] = err.value.problems
    assert problem.startswith(f"{tmp_path / 'm' / 'web.yaml'}:10: Pod (v1) is not a kind spec.workload can create")


def test_a_missing_manifest_is_refused_at_its_place_in_the_experiment(tmp_path: Path) -> None:
    path = tmp_path / "drain.yaml"
    path.write_text(EXPERIMENT)
    with pytest.raises(SpecError) as err:
        load(path)
    assert f"{path}:8 spec.workload.manifests[0]" in err.value.problems[0]
    assert "cannot read" in err.value.problems[0]


class Store:
    """An apiserver that keeps objects by path; Deployments become ready when `ready` says."""

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None, ready: bool = True) -> None:
        self.objects = dict(existing or {})
        self.ready = ready
        self.log: list[tuple[str, str]] = []
        self.undo_seen: list[Any] = []
        self.run_dir: RunDir | None = None

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        if path not in self.objects:
            raise ApiError("GET", path, 404, "NotFound", {})
        obj = self.objects[path]
        if obj.get("kind") == "Deployment":
            n = obj["spec"]["replicas"] if self.ready else 0
            obj = {**obj, "metadata": {**obj["metadata"], "generation": 1},
                   "status": {"observedGeneration": 1, "readyReplicas": n, "updatedReplicas": n}}
        return obj

    def create(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        assert self.run_dir is not None
        self.undo_seen.append(self.run_dir.pending())   # what a SIGKILL right now would leave behind
        self.objects[f"{path}/{body['metadata']['name']}"] = body
        self.log.append(("create", path))
        return body

    def delete(self, path: str, **_: Any) -> None:
        self.log.append(("delete", path))
        self.objects.pop(path, None)


NS, DEPLOY = "/api/v1/namespaces/shop", "/apis/apps/v1/namespaces/shop/deployments/web"


def workload(tmp_path: Path) -> Workload:
    [exp] = load(write(tmp_path))
    assert exp.workload is not None
    return exp.workload


def test_objects_are_created_with_their_undo_on_disk_first_and_deleted_at_the_end(tmp_path: Path) -> None:
    store = Store()
    run_dir = store.run_dir = RunDir.create(tmp_path / "runs", "drain")
    target = FakeTarget(api=store)
    created = deploy(workload(tmp_path), target, run_dir, lambda *a, **k: None)
    assert created == [NS, DEPLOY]
    # Before each create, the undo on disk already deletes it (and what came before).
    paths = [entry[0]["undo"][0]["params"]["paths"] for entry in store.undo_seen]
    assert paths == [[NS], [NS, DEPLOY]]
    assert json.loads((run_dir / "undo.json").read_text())[0]["standing"] is True
    run_dir.write_pending([{"fault": "kill-process", "index": 0, "undo": []}])  # a fault's undo comes and goes
    run_dir.write_pending([])
    assert [e["fault"] for e in run_dir.pending()] == ["workload"]
    remove(target, created, run_dir, lambda *a, **k: None)
    assert store.log[-2:] == [("delete", DEPLOY), ("delete", NS)]
    assert not store.objects and not run_dir.has_pending


def test_objects_already_there_are_left_alone(tmp_path: Path) -> None:
    mine = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}}}
    store = Store({NS: mine})
    run_dir = store.run_dir = RunDir.create(tmp_path / "runs", "drain")
    target = FakeTarget(api=store)
    created = deploy(workload(tmp_path), target, run_dir, lambda *a, **k: None)
    assert created == [DEPLOY]
    remove(target, created, run_dir, lambda *a, **k: None)
    assert store.objects == {NS: mine}


def test_a_workload_not_ready_in_time_is_deleted_and_nothing_runs(tmp_path: Path) -> None:
    store = Store(ready=False)
    run_dir = store.run_dir = RunDir.create(tmp_path / "runs", "drain")
    w = workload(tmp_path)
    with pytest.raises(WorkloadNotReady) as err:
        deploy(Workload(w.manifests, w.objects, 0.2, where="drain.yaml:8"), FakeTarget(api=store), run_dir,
               lambda *a, **k: None)
    assert "could not run: spec.workload (drain.yaml:8)" in str(err.value)
    assert "Deployment shop/web: 0/2 replicas ready" in str(err.value)
    assert not store.objects and not run_dir.has_pending


@pytest.mark.parametrize(("obj", "why"), [
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3},
      "status": {"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 3}}, ""),
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3},
      "status": {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3}}, "3/3 replicas ready"),
    ({"kind": "DaemonSet", "metadata": {"generation": 1},
      "status": {"observedGeneration": 1, "desiredNumberScheduled": 4, "numberReady": 3}}, "3/4 pods ready"),
    ({"kind": "PodDisruptionBudget", "metadata": {"generation": 1}, "status": {}},
     "not counted by the disruption controller yet"),
    ({"kind": "ConfigMap", "metadata": {}}, "")])
def test_what_ready_means(obj: dict[str, Any], why: str) -> None:
    assert not_ready(obj) == why


class NodeApi(Store):
    """The store, plus three worker nodes and no pods: the drain's `select: busiest` finds nothing."""

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path == "/api/v1/nodes":
            return {"items": [{"metadata": {"name": f"n{i}", "labels": {"chaoslab.io/simulated": "true"}},
                               "spec": {}} for i in (1, 2, 3)]}
        if path.endswith("/pods") or path == "/api/v1/pods":
            return {"items": []}
        return super().get(path, **params)


def test_a_fault_that_needs_the_workload_is_bound_when_the_run_starts(tmp_path: Path) -> None:
    [exp] = load(write(tmp_path))
    drain = exp.faults[0]
    exp = dataclasses.replace(exp, faults=(dataclasses.replace(drain, params={**drain.params, "select": "busiest"}),))
    plan = make_plan(exp, FakeTarget(api=NodeApi()), [{"kind": "apiserver"}], settings=Settings(), yes=True)
    assert not plan.refusals
    [fp] = plan.faults
    assert fp.deferred is not None and "once spec.workload has created Namespace shop, Deployment shop/web" in fp.deferred
    # With the workload there, the same fault is refused at once.
    there = NodeApi({NS: {"kind": "Namespace"}, DEPLOY: {"kind": "ConfigMap"}})
    plan = make_plan(exp, FakeTarget(api=there), [{"kind": "apiserver"}], settings=Settings(), yes=True)
    assert plan.refusals and "busiest found no pod" in plan.refusals[0]
