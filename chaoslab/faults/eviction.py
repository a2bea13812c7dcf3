"""Evicting and deleting pods through the API as `kubectl drain` does: which Eviction the server speaks,
PodDisruptionBudget refusals retried until a deadline, a bounded pool of parallel evictions, and waiting
until the pods are gone. Used by the `drain-node` and `evict-pods` faults.

Which Eviction: the `pods/eviction` entry of `/api/v1` names its group and version (`policy/v1beta1` on
Kubernetes 1.20, `policy/v1` from 1.22); a server without it gets plain deletes, as kubectl does.

Answers to an eviction (kubectl's reading): 2xx evicted; 404 already gone; 429 refused by a PDB (or too
many evictions at once), retried every `retry_interval` seconds until the deadline; anything else fails,
including 500 "more than one PodDisruptionBudget". A pod counts as gone when GET answers 404 or a pod of
the same name with another uid (a StatefulSet's replacement).

    >>> evictor = Evictor(api, grace_period=None, retry_interval=5.0)
    >>> results = evictor.evict_all(pods, deadline=time.monotonic() + 120, on_result=print)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_any,
    stop_before_delay,
    stop_when_event_set,
    wait_fixed,
)

from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import TargetError
from chaoslab.faults.base import FaultParams
from chaoslab.spec.durations import parse_duration

Outcome = Literal["evicted", "deleted", "gone", "blocked", "failed"]
"""evicted/deleted: the API accepted it; gone: the pod was gone before we asked; blocked: a PDB still
refused at the deadline (or the drain was stopped); failed: any other refusal."""


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> PodRef:
        meta = pod["metadata"]
        return cls(meta["namespace"], meta["name"], meta.get("uid", ""))


@dataclass(frozen=True)
class EvictionResult:
    pod: PodRef
    outcome: Outcome
    attempts: int = 1
    """Requests sent (more than one: a PDB refused the earlier ones)."""
    blocked_seconds: float = 0.0
    """Seconds between the first refusal (429) and the last answer."""
    reason: str = ""
    """The last refusal's message (PDB name and why), or the error."""

    def to_json(self) -> dict[str, Any]:
        return {"pod": self.pod.key, "uid": self.pod.uid, "outcome": self.outcome, "attempts": self.attempts,
                "blockedSeconds": round(self.blocked_seconds, 3), "reason": self.reason}


def eviction_version(api: KubeApi) -> str | None:
    """`policy/v1` or `policy/v1beta1`: the Eviction the server takes; None if it has no eviction API."""
    for resource in api.get("/api/v1").get("resources", []):
        if resource.get("name") == "pods/eviction":
            group, version = resource.get("group"), resource.get("version")
            if group and version:
                return f"{group}/{version}"
            break  # an old server that does not say: the policy group's preferred version
    else:
        return None
    try:
        group_info = api.get("/apis/policy")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return str(group_info["preferredVersion"]["groupVersion"])


def eviction_body(pod: PodRef, version: str, grace_period: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": version, "kind": "Eviction",
                            "metadata": {"name": pod.name, "namespace": pod.namespace}}
    if grace_period is not None:
        body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
    return body


def _pdb_refusal(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.status == 429


def _message(exc: ApiError) -> str:
    return str(exc.body.get("message", exc.reason)) if isinstance(exc.body, dict) else exc.reason


@dataclass
class Evictor:
    """Evicts (or, with `version=None`, deletes) pods; one instance per drain, shared by its threads."""

    api: KubeApi
    version: str | None
    """From `eviction_version`; None: delete instead of evicting (disableEviction, or no eviction API)."""
    grace_period: int | None = None
    """Seconds the pods get to stop; None: each pod's own terminationGracePeriodSeconds."""
    retry_interval: float = 5.0
    """Seconds between attempts while a PDB refuses (kubectl: 5)."""
    parallelism: int = 8
    """Evictions in flight at once."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set it to end retries early (Ctrl-C, abort): pods still refused then count as blocked."""
    on_refused: Callable[[PodRef, str], None] = lambda pod, message: None
    """Called (from a pool thread) at a pod's first PDB refusal, with the server's message."""

    def evict(self, pod: PodRef, deadline: float) -> EvictionResult:
        """One pod: evict, retrying PDB refusals until `deadline` (monotonic); never raises for API answers."""
        path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}"
        if self.version is None:
            return self._delete(pod, path)
        attempts, first_refusal, last = 0, None, ""

        def attempt() -> None:
            nonlocal attempts, first_refusal, last
            attempts += 1
            try:
                self.api.create(f"{path}/eviction", eviction_body(pod, self.version or "", self.grace_period))
            except ApiError as exc:
                if exc.status == 429:
                    last = _message(exc)
                    if first_refusal is None:
                        first_refusal = time.monotonic()
                        self.on_refused(pod, last)
                raise

        def sleep(seconds: float) -> None:
            self.stop.wait(seconds)  # a stop ends the wait at once; the stop condition then ends the retries

        def blocked() -> float:
            return time.monotonic() - first_refusal if first_refusal is not None else 0.0

        left = max(deadline - time.monotonic(), 0.0)
        retrying = Retrying(retry=retry_if_exception(_pdb_refusal), wait=wait_fixed(self.retry_interval),
                            stop=stop_any(stop_before_delay(left), stop_when_event_set(self.stop)),
                            sleep=sleep, reraise=False)
        try:
            retrying(attempt)
        except RetryError:
            return EvictionResult(pod, "blocked", attempts, blocked(), last)
        except ApiError as exc:
            if exc.status == 404:
                return EvictionResult(pod, "gone", attempts, blocked())
            return EvictionResult(pod, "failed", attempts, blocked(), str(exc))
        except TargetError as exc:
            return EvictionResult(pod, "failed", attempts, blocked(), str(exc))
        return EvictionResult(pod, "evicted", attempts, blocked(), last)

    def _delete(self, pod: PodRef, path: str) -> EvictionResult:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if self.grace_period is not None:
            options["gracePeriodSeconds"] = self.grace_period
        try:
            gone = self.api.delete(path, options) is None
        except TargetError as exc:
            return EvictionResult(pod, "failed", reason=str(exc))
        return EvictionResult(pod, "gone" if gone else "deleted")

    def delete(self, pod: PodRef) -> EvictionResult:
        """Delete outright (finished pods; PDBs do not apply)."""
        return self._delete(pod, f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}")

    def evict_all(self, pods: Sequence[PodRef], deadline: float,
                  on_result: Callable[[EvictionResult], None] = lambda _: None) -> list[EvictionResult]:
        """Evict every pod, at most `parallelism` at once; `on_result` is called (from the pool's threads)
        as each one ends. Results in the order of `pods`."""
        def one(pod: PodRef) -> EvictionResult:
            result = self.evict(pod, deadline)
            on_result(result)
            return result

        pool = ThreadPoolExecutor(max_workers=max(1, self.parallelism), thread_name_prefix="evict")
        try:
            results = list(pool.map(one, pods))
        except BaseException:
            # Ctrl-C or a crashed callback: end the retries now rather than wait out the deadline.
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return results


def wait_gone(api: KubeApi, pods: Iterable[PodRef], node: str | None, deadline: float, stop: threading.Event,
              on_gone: Callable[[PodRef], None] = lambda _: None, interval: float = 1.0,
              first_interval: float = 0.1) -> list[PodRef]:
    """Poll until every pod in `pods` is gone (its uid no longer listed), the deadline passes or `stop` is
    set; return those still there. One list a round, not one GET per pod: the pods of `node`, or with
    `node=None` (pods on many nodes) the pods of each namespace involved.

    The pause between lists starts at `first_interval` and doubles up to `interval`: pods whose kubelet
    removes them at once (no grace period to sit out, simulated nodes) are seen gone within a tenth of a
    second instead of a whole `interval`, and a long graceful termination still costs one list a second.
    """
    pending = {p.uid: p for p in pods}
    pause = min(first_interval, interval)
    while pending:
        if node is not None:
            items = api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={node}")["items"]
        else:
            items = [p for ns in sorted({p.namespace for p in pending.values()})
                     for p in api.get(f"/api/v1/namespaces/{ns}/pods")["items"]]
        present = {p["metadata"]["uid"] for p in items}
        for uid in [u for u in pending if u not in present]:
            on_gone(pending.pop(uid))
        if not pending or time.monotonic() >= deadline or stop.wait(pause):
            break
        pause = min(pause * 2, interval)
    return list(pending.values())


@dataclass(frozen=True)
class EvictionSettings(FaultParams):
    """How a fault evicts, as experiments spell it: the parameters `drain-node` and `evict-pods` share
    (their params types extend this one)."""

    gracePeriod: str | float | None = None  # camelCase fields: the YAML spelling, as build() passes them
    """Seconds each pod gets to stop; default: the pod's own terminationGracePeriodSeconds."""
    timeout: str | float = "5m"
    """How long evictions are retried while a PDB refuses, and evicted pods waited for (default 5m)."""
    parallelism: int = 8
    """Evictions in flight at once (default 8)."""
    retryInterval: str | float = "5s"
    """Pause between attempts while a PDB refuses an eviction (default 5s, as kubectl)."""

    def seconds(self, name: str) -> float:
        return parse_duration(getattr(self, name), name)

    def eviction_problems(self, fault: str) -> list[str]:
        """What is wrong with these settings, each message naming `fault` and the parameter."""
        problems = []
        for name in ("gracePeriod", "timeout", "retryInterval"):
            if getattr(self, name) is not None:
                try:
                    parse_duration(getattr(self, name), f"{fault} {name}")
                except ValueError as exc:
                    problems.append(str(exc))
        if self.parallelism < 1:
            problems.append(f"{fault}: parallelism must be at least 1")
        return problems

    def evictor(self, api: KubeApi, version: str | None) -> Evictor:
        """An `Evictor` with these settings; `version` None deletes instead of evicting."""
        grace = None if self.gracePeriod is None else round(self.seconds("gracePeriod"))
        return Evictor(api, version, grace, self.seconds("retryInterval"), self.parallelism)
