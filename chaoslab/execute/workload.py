"""`spec.workload` on a cluster: create the objects that are not there yet (their undo on disk first), wait
until they are ready, and delete what was created at the end. An object that already exists is left alone,
whatever it holds: it is not chaoslab's to change or delete.

Ready means: a Deployment or StatefulSet has every desired replica ready and up to date, a DaemonSet runs
ready on every node it should, a PodDisruptionBudget has been counted by the disruption controller
(`status.observedGeneration`, else it allows no eviction yet); other kinds are ready once created.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from chaoslab.clients.kubeapi import KubeApi, get_or_none
from chaoslab.errors import ChaoslabError
from chaoslab.execute.rundir import RunDir
from chaoslab.faults.base import Record, Undo, apply_undo
from chaoslab.spec.workload import ObjectRef, Workload, ref
from chaoslab.targets import Target

POLL = 0.5


class WorkloadNotReady(ChaoslabError):
    """The workload's objects could not be created, or were not ready in time."""


def not_ready(obj: Mapping[str, Any]) -> str:
    """Why one object is not ready yet ("" when it is)."""
    kind, spec, status = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    if kind in ("Deployment", "StatefulSet"):
        want = int(spec.get("replicas", 1))
        ready, updated = int(status.get("readyReplicas") or 0), int(status.get("updatedReplicas") or 0)
        if ready < want or updated < want or status.get("observedGeneration") != generation:
            return f"{ready}/{want} replicas ready"
    elif kind == "DaemonSet":
        want, ready = int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)
        if ready < want or status.get("observedGeneration") != generation:
            return f"{ready}/{want} pods ready"
    elif kind == "PodDisruptionBudget" and status.get("observedGeneration") != generation:
        return "not counted by the disruption controller yet"
    return ""


def deploy(workload: Workload, target: Target, run_dir: RunDir, record: Record) -> list[str]:
    """Create the objects that are not there (each one's deletion in the run's undo before it is
    created), then wait until every object is ready; the paths created. `WorkloadNotReady` (after deleting
    what it created) when that fails."""
    api = target.api()
    created: list[str] = []
    try:
        for r in map(ref, workload.objects):
            if get_or_none(api, r.path) is not None:
                record("workload", object=r.shown, action="kept", reason="already there")
                continue
            run_dir.write_standing([standing(created + [r.path])])
            api.create(r.collection, dict(r.body))
            created.append(r.path)
            record("workload", object=r.shown, action="created")
        wait_ready(api, [ref(o) for o in workload.objects], workload.ready_timeout)
        record("workload", action="ready", objects=len(workload.objects), created=len(created))
    except (ChaoslabError, KeyboardInterrupt) as exc:
        remove(target, created, run_dir, record)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise WorkloadNotReady(f"could not run: spec.workload ({workload.where}): {exc}; nothing was "
                               f"injected" + (", and the objects created were deleted" if created else "")) from exc
    return created


def standing(paths: list[str]) -> dict[str, Any]:
    """The run's standing undo entry for the created objects."""
    return {"fault": "workload", "index": -1, "undo": [Undo("delete-objects", {"paths": paths}).to_json()]}


def wait_ready(api: KubeApi, refs: list[ObjectRef], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        waiting = []
        for r in refs:
            obj = get_or_none(api, r.path)
            why = "not found" if obj is None else not_ready(obj)
            if why:
                waiting.append(f"{r.shown}: {why}")
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise WorkloadNotReady(f"not ready after {timeout:g} s: {'; '.join(waiting)}")
        time.sleep(POLL)


def remove(target: Target, created: list[str], run_dir: RunDir, record: Record) -> None:
    """Delete what `deploy` created, last first, and wait until it is gone; the standing undo goes only
    then (a failure leaves it for `chaoslab recover`)."""
    if created:
        apply_undo(target, Undo("delete-objects", {"paths": created}), record=record)
        record("workload", action="deleted", objects=len(created))
    run_dir.write_standing([])
