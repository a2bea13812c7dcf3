"""Simulated worker nodes: one process plays the kubelets of every node in the lab.

The lab has a real control plane but no kubelets and no container runtime. The lab supervisor starts

    python -m chaoslab.lab.nodes --kubeconfig PATH --count N --name-prefix lab-node- --lease-seconds 40 \\
        --paused-dir DIR [--status-seconds 60] [--stats-file FILE]

and this process then, like kubelet 1.20:
- registers the Nodes (adopting ones that exist) and posts their status: Ready, with capacity and addresses;
- renews each node's Lease in `kube-node-lease` every lease/4 seconds, the nodes' renewals spread evenly
  over that interval, and posts full node status every --status-seconds;
- watches pods: a pod bound to one of its nodes is reported Running and Ready at once, a pod being deleted
  is removed at once (its containers "exit on SIGTERM").

A node whose name is a file in --paused-dir is a dead kubelet: no heartbeats and no pod work, so the real
node-lifecycle controller marks it NotReady; removing the file revives it at once. The fault modules pause
nodes through `LabLayout.nodes_control_dir`. The manifests and the schedule are pure functions, for tests.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import math
import os
import queue
import resource
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import ChaoslabError

log = logging.getLogger("chaoslab.lab.nodes")

KUBELET_VERSION = "v1.20.2"
LEASE_NAMESPACE = "kube-node-lease"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
#: Only bound pods concern a kubelet; the apiserver filters, which halves the watch traffic.
BOUND_PODS = "spec.nodeName!="
POD_CONDITIONS = ("Initialized", "Ready", "ContainersReady", "PodScheduled")
PodAction = Literal["run", "delete"]


@dataclass(frozen=True)
class NodeSimConfig:
    """What the supervisor chooses for the simulated nodes."""

    count: int
    """Number of nodes, named `{prefix}1` … `{prefix}{count}`."""
    paused_dir: Path
    """Directory of pause files: a file named like a node stops that node's kubelet."""
    prefix: str = "lab-node-"
    """Node name prefix."""
    lease_seconds: int = 40
    """Lease duration in seconds (kubelet's default 40); renewed every quarter of it."""
    status_seconds: float = 60.0
    """Seconds between full node status updates of one node (kubelet with leases: 5 minutes)."""
    stats_file: Path | None = None
    """JSON file rewritten every 5 s and at exit with counters; None for none."""
    heartbeat_workers: int = 8
    """Threads sending Lease renewals and node status, so one slow request delays no other node."""
    pod_workers: int = 8
    """Threads sending pod status patches and deletions."""


# ---- pure: names, addresses, times -----------------------------------------------------------------
def node_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(1, count + 1)]


def node_address(index: int) -> str:
    """Node `index` (from 1) → 127.2.x.y: loopback, so nothing ever reaches a simulated node by mistake."""
    hi, lo = divmod(index - 1, 254)
    return f"127.2.{hi % 256}.{lo + 1}"


def pod_ip(serial: int) -> str:
    """The `serial`-th pod IP, 127.3.x.y; unique for 65,024 pods, then reused."""
    hi, lo = divmod(serial % (256 * 254), 254)
    return f"127.3.{hi}.{lo + 1}"


def rfc3339(ts: float) -> str:
    """metav1.Time: whole seconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(ts: float) -> str:
    """metav1.MicroTime, as Lease renewTime wants it: `2026-11-23T14:00:00.000000Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- pure: request bodies --------------------------------------------------------------------------
def node_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "chaoslab.io/simulated": "true"}


def node_manifest(name: str) -> dict[str, Any]:
    """The Node to create; its status is a subresource, posted separately (`node_status`)."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": node_labels(name)}, "spec": {}}


def node_status(name: str, index: int, now: float, ready_since: float) -> dict[str, Any]:
    """A strategic-merge patch for `/api/v1/nodes/NAME/status`: Ready, no pressure, heartbeat `now`."""
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    ids = {k: str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{k}.{name}.chaoslab.io")) for k in ("machine", "boot")}
    return {"status": {
        "capacity": dict(CAPACITY),
        "allocatable": dict(CAPACITY),
        "conditions": [
            {"type": kind, "status": status, "reason": reason, "message": message,
             "lastHeartbeatTime": rfc3339(now), "lastTransitionTime": rfc3339(ready_since)}
            for kind, status, reason, message in conditions
        ],
        "addresses": [{"type": "InternalIP", "address": node_address(index)}, {"type": "Hostname", "address": name}],
        "nodeInfo": {
            "machineID": ids["machine"].replace("-", ""), "systemUUID": ids["machine"], "bootID": ids["boot"],
            "kernelVersion": "chaoslab", "osImage": "chaoslab simulated node", "operatingSystem": "linux",
            "architecture": "amd64", "containerRuntimeVersion": "chaoslab://0.1.0",
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
        },
    }}


def lease_body(name: str, lease_seconds: int, now: float, node_uid: str | None = None) -> dict[str, Any]:
    """The node's Lease; owned by its Node as kubelet does, so deleting the Node deletes the Lease."""
    meta: dict[str, Any] = {"name": name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}]
    spec = {"holderIdentity": name, "leaseDurationSeconds": lease_seconds, "renewTime": micro_time(now)}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


def _is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_action(pod: Mapping[str, Any]) -> PodAction | None:
    """What a kubelet does now for a pod bound to it: delete it, report it running, or nothing."""
    if pod["metadata"].get("deletionTimestamp"):
        return "delete"
    phase = pod.get("status", {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return None
    # Running but not Ready: the node-lifecycle controller marked it while its node was paused.
    return None if phase == "Running" and _is_ready(pod) else "run"


def running_pod_status(pod: Mapping[str, Any], host_ip: str, ip: str, now: float) -> dict[str, Any]:
    """A strategic-merge patch for `.../pods/NAME/status`: Running, every container started and ready.

    Keeps the pod's startTime, IP and container start times if it has them, so a repeated patch changes nothing.
    """
    status = pod.get("status", {})
    uid = pod["metadata"]["uid"]
    started = status.get("startTime") or rfc3339(now)
    ip = status.get("podIP") or ip
    old_conditions = {c.get("type"): c for c in status.get("conditions") or []}
    old_running = {c.get("name"): c.get("state", {}).get("running") for c in status.get("containerStatuses") or []}

    def since(kind: str) -> str:
        old = old_conditions.get(kind, {})
        return str(old["lastTransitionTime"]) if old.get("status") == "True" and old.get("lastTransitionTime") \
            else rfc3339(now)

    def container_status(c: Mapping[str, Any], i: int, done: bool) -> dict[str, Any]:
        out = {"name": c["name"], "image": c.get("image", ""), "imageID": f"chaoslab://{c.get('image', '')}",
               "containerID": f"chaoslab://{uid[:8]}-{i}", "restartCount": 0, "lastState": {}}
        if done:  # init containers ran to completion before the others started
            return out | {"ready": False, "state": {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}}}
        running = old_running.get(c["name"]) or {"startedAt": started}
        return out | {"ready": True, "started": True, "state": {"running": running}}

    spec = pod.get("spec", {})
    inits = spec.get("initContainers") or []
    out: dict[str, Any] = {
        "phase": "Running", "hostIP": host_ip, "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started,
        "conditions": [{"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": since(kind)}
                       for kind in POD_CONDITIONS],
        "containerStatuses": [container_status(c, i, False) for i, c in enumerate(spec.get("containers") or [])],
    }
    if inits:
        out["initContainerStatuses"] = [container_status(c, 100 + i, True) for i, c in enumerate(inits)]
    return {"status": out}


# ---- pure: schedule and pauses ---------------------------------------------------------------------
def spread(count: int, period: float) -> list[float]:
    """Offsets into `period` for `count` nodes, evenly spaced, so renewals do not all go out at once."""
    return [period * i / count for i in range(count)]


def next_due(due: float, period: float, now: float) -> float:
    """The slot after `due`; if the process stalled past it, the next future slot of the same phase."""
    return due + period * (math.floor(max(now - due, 0.0) / period) + 1)


def paused_nodes(entries: Iterable[str], names: Collection[str]) -> frozenset[str]:
    """Which of our nodes are paused, given the file names in the paused directory."""
    return frozenset(e for e in entries if e in names)


def read_paused(directory: Path, names: Collection[str]) -> frozenset[str]:
    try:
        return paused_nodes(os.listdir(directory), names)
    except FileNotFoundError:
        return frozenset()


def summarize(names: Iterable[str], limit: int = 8) -> str:
    items = sorted(names, key=lambda n: (len(n), n))
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# ---- I/O -------------------------------------------------------------------------------------------
class _Workers:
    """Daemon threads running keyed jobs; a key already waiting in the queue is not queued twice.

    A key leaves the queue when its job starts, so news arriving while it runs queues it again: jobs read
    the latest state when they run, and nothing is lost. Daemon threads: exit never waits for a request.
    """

    def __init__(self, name: str, size: int, on_error: Callable[[Hashable, Exception], None]) -> None:
        self._queue: queue.SimpleQueue[tuple[Hashable, Callable[[], None]]] = queue.SimpleQueue()
        self._waiting: set[Hashable] = set()
        self._lock = threading.Lock()
        self._on_error = on_error
        for n in range(size):
            threading.Thread(target=self._run, name=f"{name}-{n}", daemon=True).start()

    def submit(self, key: Hashable, job: Callable[[], None]) -> None:
        with self._lock:
            if key in self._waiting:
                return
            self._waiting.add(key)
        self._queue.put((key, job))

    def _run(self) -> None:
        while True:
            key, job = self._queue.get()
            with self._lock:
                self._waiting.discard(key)
            try:
                job()
            except Exception as exc:  # noqa: BLE001  (a worker must survive anything one job does)
                self._on_error(key, exc)


class _Throttle:
    """At most one warning per kind every `every` seconds, saying how many were held back."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -math.inf) < self.every:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        log.warning("%s%s", message, f" (and {held} more {kind} failures)" if held else "")


class Simulator:
    """The kubelets of `config.count` nodes. `run(stop)` blocks until `stop` is set."""

    def __init__(self, api: KubeApi, config: NodeSimConfig) -> None:
        self.api, self.config = api, config
        self.names = node_names(config.prefix, config.count)
        self.index = {name: i for i, name in enumerate(self.names, start=1)}
        self.paused: frozenset[str] = frozenset()  # replaced whole by the main thread; read by all
        self.registered: dict[str, str] = {}  # node name → uid
        self.ready_since = {name: time.time() for name in self.names}
        self.pods: dict[str, dict[str, Any]] = {}  # uid → latest pod, for pods bound to our nodes
        self.pod_ips: dict[str, str] = {}
        self.used_ips: set[str] = set()  # pod IPs of the pods we track, ours or a previous run's
        self.made_running: set[str] = set()  # uids counted in pods_running
        self.deleting: set[str] = set()  # uids whose DELETE we sent
        self.retry: dict[str, float] = {}  # uid → monotonic time to retry a failed pod job
        self.lock = threading.Lock()
        self.started_wall = time.time()
        # late_renewals: scheduled renewals sent more than 1 s late (the worst lateness is kept apart)
        self.counters = dict.fromkeys(
            ("pods_running", "pods_deleted", "lease_renewals", "late_renewals", "status_updates", "failures"), 0)
        self.worst_lateness = 0.0
        self._serials = itertools.count()
        self._throttle = _Throttle()
        self.heartbeats = _Workers("heartbeat", config.heartbeat_workers, self._failed)
        self.pod_work = _Workers("pod", config.pod_workers, self._failed)

    def _failed(self, key: Hashable, exc: Exception) -> None:
        self._count("failures")
        kind = key[0] if isinstance(key, tuple) else "pod"
        if not isinstance(exc, ChaoslabError):
            log.exception("%s job %s crashed", kind, key)
        self._throttle.warn(str(kind), f"{kind} {key[-1] if isinstance(key, tuple) else key}: {exc}")

    def _count(self, counter: str, n: int = 1) -> None:
        with self.lock:
            self.counters[counter] += n

    # ---- heartbeats ----------------------------------------------------------------------------
    def register(self, name: str) -> None:
        """Create the Node or adopt it (a restart of this process finds them), then report it up."""
        try:
            node = self.api.create("/api/v1/nodes", node_manifest(name))
        except ApiError as exc:
            if exc.status != 409:
                raise
            node = self.api.patch(f"/api/v1/nodes/{name}", {"metadata": {"labels": node_labels(name)}})
        self.registered[name] = node["metadata"]["uid"]
        if name not in self.paused:  # a paused node exists but says nothing, even after our restart
            self.post_status(name)
            self.renew(name)

    def post_status(self, name: str) -> None:
        body = node_status(name, self.index[name], time.time(), self.ready_since[name])
        self.api.patch(f"/api/v1/nodes/{name}/status", body, patch_type="strategic")
        self._count("status_updates")

    def renew(self, name: str, due: float | None = None) -> None:
        """Renew the node's Lease; `due` (monotonic) is the scheduled time, to measure how late we are."""
        if due is not None:
            lateness = time.monotonic() - due
            with self.lock:
                self.worst_lateness = max(self.worst_lateness, lateness)
                self.counters["late_renewals"] += lateness > 1.0
        body = lease_body(name, self.config.lease_seconds, time.time(), self.registered.get(name))
        try:
            self.api.patch(f"{LEASES}/{name}", {"spec": body["spec"]})
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.api.create(LEASES, body)
        self._count("lease_renewals")

    def _heartbeat(self, kind: str, name: str, due: float | None) -> None:
        if name in self.paused:  # paused while this job waited in the queue
            return
        if name not in self.registered:
            self.register(name)  # its first registration failed; this is the retry
        elif kind == "lease":
            self.renew(name, due)
        else:
            self.post_status(name)

    def _register_all(self, stop: threading.Event) -> None:
        if not self.names:
            return
        started, left, done = time.monotonic(), [len(self.names)], threading.Event()

        def one(name: str) -> None:
            try:
                self.register(name)
            finally:
                with self.lock:
                    left[0] -= 1
                    if not left[0]:
                        done.set()

        for name in self.names:
            self.heartbeats.submit(("register", name), partial(one, name))
        while not done.wait(0.2) and not stop.is_set():
            pass
        failed = len(self.names) - len(self.registered)
        log.info("registered %d nodes in %.1f s%s", len(self.registered), time.monotonic() - started,
                 f"; {failed} failed, retried at their next heartbeat" if failed else "")

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        self._register_all(stop)
        interval, n = self.config.lease_seconds / 4, len(self.names)
        start = time.monotonic()
        slots = [(start + off, "lease", name) for off, name in zip(spread(n, interval), self.names)]
        slots += [(start + off, "status", name) for off, name in zip(spread(n, self.config.status_seconds), self.names)]
        heapq.heapify(slots)
        while slots and not stop.is_set():
            due, kind, name = slots[0]
            delay = due - time.monotonic()
            if delay > 0:
                stop.wait(min(delay, 0.5))
                continue
            period = interval if kind == "lease" else self.config.status_seconds
            heapq.heapreplace(slots, (next_due(due, period, time.monotonic()), kind, name))
            if name not in self.paused:
                self.heartbeats.submit((kind, name), partial(self._heartbeat, kind, name, due))

    def set_paused(self, paused: frozenset[str]) -> None:
        """Apply a new set of paused nodes; revived nodes report at once, and their pods get attention."""
        if paused == self.paused:
            return
        stopped, revived = paused - self.paused, self.paused - paused
        self.paused = paused
        if stopped:
            log.info("paused %s (%d of %d nodes paused)", summarize(stopped), len(paused), len(self.names))
        if revived:
            log.info("resumed %s (%d of %d nodes paused)", summarize(revived), len(paused), len(self.names))
        for name in revived:
            self.ready_since[name] = time.time()
            self.heartbeats.submit(("status", name), partial(self._heartbeat, "status", name, None))
            self.heartbeats.submit(("lease", name), partial(self._heartbeat, "lease", name, None))
        with self.lock:
            waiting = [uid for uid, pod in self.pods.items() if pod["spec"]["nodeName"] in revived]
        for uid in waiting:
            self.pod_work.submit(uid, partial(self._pod_job, uid))

    # ---- pods ----------------------------------------------------------------------------------
    def _pod_job(self, uid: str) -> None:
        with self.lock:
            pod = self.pods.get(uid)
            action = None if pod is None or pod["spec"]["nodeName"] in self.paused else pod_action(pod)
            if action == "delete":
                if uid in self.deleting:  # our DELETE is on its way; its own MODIFIED event brought us here
                    return
                self.deleting.add(uid)
        if pod is None or action is None:
            return
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        try:
            if action == "delete":
                options = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                           "preconditions": {"uid": uid}}
                if self.api.delete(path, options) is not None:
                    self._count("pods_deleted")
            else:
                host_ip = node_address(self.index[pod["spec"]["nodeName"]])
                status = running_pod_status(pod, host_ip, self._ip_for(uid), time.time())
                self.api.patch(f"{path}/status", status, patch_type="strategic")
                with self.lock:
                    # Count pods we brought up, not adopted ones we made Ready again after a pause.
                    if pod.get("status", {}).get("phase") != "Running" and uid not in self.made_running:
                        self.made_running.add(uid)
                        self.counters["pods_running"] += 1
        except ChaoslabError as exc:
            if isinstance(exc, ApiError) and exc.status in (404, 409):
                return  # gone, or replaced by a namesake: nothing left to do
            with self.lock:
                self.deleting.discard(uid)
                # A kubelet retries on its next sync; the watch may bring no news to retry on.
                self.retry.setdefault(uid, time.monotonic() + 1.0)
            raise

    def _retry_due(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [uid for uid, at in self.retry.items() if at <= now]
            for uid in due:
                del self.retry[uid]
        for uid in due:
            self.pod_work.submit(uid, partial(self._pod_job, uid))

    def _ip_for(self, uid: str) -> str:
        """The pod's IP: one not held by any pod we track, so a restart of this process reuses none."""
        with self.lock:
            if uid not in self.pod_ips:
                ip = pod_ip(next(self._serials))
                while ip in self.used_ips:
                    ip = pod_ip(next(self._serials))
                self.pod_ips[uid] = ip
                self.used_ips.add(ip)
            return self.pod_ips[uid]

    def _forget(self, uid: str) -> None:
        """Drop a pod that is gone (caller holds the lock)."""
        pod = self.pods.pop(uid, None)
        self.used_ips.discard(self.pod_ips.pop(uid, None) or (pod or {}).get("status", {}).get("podIP"))
        self.made_running.discard(uid)
        self.deleting.discard(uid)
        self.retry.pop(uid, None)

    def _track(self, pod: dict[str, Any], gone: bool = False) -> None:
        uid, node = pod["metadata"]["uid"], pod.get("spec", {}).get("nodeName")
        if gone or node not in self.index:
            with self.lock:
                self._forget(uid)
            return
        with self.lock:
            self.pods[uid] = pod
            if ip := pod.get("status", {}).get("podIP"):
                self.used_ips.add(ip)
        if node not in self.paused and pod_action(pod):
            self.pod_work.submit(uid, partial(self._pod_job, uid))

    def _relist(self) -> str:
        """List bound pods, replace what we track, queue their work; return the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"fieldSelector": BOUND_PODS, "limit": 500}
        while True:
            page = self.api.get("/api/v1/pods", **params)
            items += page["items"]
            params["continue"] = page["metadata"].get("continue")
            if not params["continue"]:
                break
        ours = {p["metadata"]["uid"] for p in items if p["spec"].get("nodeName") in self.index}
        with self.lock:
            for uid in set(self.pods) - ours:
                self._forget(uid)
        for pod in items:
            self._track(pod)
        return str(page["metadata"]["resourceVersion"])

    def _pod_loop(self, stop: threading.Event) -> None:
        rv: str | None = None
        backoff = 1.0
        while not stop.is_set():
            try:
                if rv is None:
                    rv = self._relist()
                    log.info("pods listed: %d on our nodes", len(self.pods))
                for event in self.api.watch("/api/v1/pods", resource_version=rv, fieldSelector=BOUND_PODS):
                    if stop.is_set():
                        return
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":  # 410 Gone: our resourceVersion was compacted away
                        log.info("pod watch: %s %s; relisting", obj.get("code"), obj.get("message"))
                        rv = None
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self._track(obj, gone=kind == "DELETED")
                backoff = 1.0
            except ChaoslabError as exc:
                log.warning("pod watch failed: %s; relisting in %.0f s", exc, backoff)
                rv = None
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    # ---- the whole ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with self.lock:
            return {"nodes": len(self.names), "registered": len(self.registered), "paused": len(self.paused),
                    **self.counters, "worst_renewal_lateness_s": round(self.worst_lateness, 3),
                    "pods_tracked": len(self.pods), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                    "started_wall": self.started_wall}

    def write_stats(self) -> None:
        if self.config.stats_file is None:
            return
        tmp = self.config.stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats(), indent=1) + "\n")
        os.replace(tmp, self.config.stats_file)  # readers never see half a file

    def run(self, stop: threading.Event) -> None:
        names = set(self.names)
        self.config.paused_dir.mkdir(parents=True, exist_ok=True)
        self.paused = read_paused(self.config.paused_dir, names)
        log.info("started: %d nodes %s…, lease %d s, status every %g s, api %s%s", len(self.names),
                 self.names[0] if self.names else "-", self.config.lease_seconds, self.config.status_seconds,
                 self.api.server, f"; paused: {summarize(self.paused)}" if self.paused else "")
        threading.Thread(target=self._heartbeat_loop, args=(stop,), name="heartbeats", daemon=True).start()
        if self.names:
            threading.Thread(target=self._pod_loop, args=(stop,), name="pods", daemon=True).start()
        next_stats = time.monotonic()
        while True:
            self.set_paused(read_paused(self.config.paused_dir, names))
            self._retry_due()
            if time.monotonic() >= next_stats:
                self.write_stats()
                next_stats += 5.0
            if stop.wait(0.5):
                break
        self.write_stats()
        log.info("stopped: %s", json.dumps(self.stats()))


def parse_args(argv: list[str] | None = None) -> tuple[Path, NodeSimConfig]:
    p = argparse.ArgumentParser(prog="python -m chaoslab.lab.nodes", description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--name-prefix", default="lab-node-")
    p.add_argument("--lease-seconds", type=int, default=40)
    p.add_argument("--paused-dir", type=Path, required=True)
    p.add_argument("--status-seconds", type=float, default=60.0)
    p.add_argument("--stats-file", type=Path)
    a = p.parse_args(argv)
    return a.kubeconfig, NodeSimConfig(count=a.count, paused_dir=a.paused_dir, prefix=a.name_prefix,
                                       lease_seconds=a.lease_seconds, status_seconds=a.status_seconds,
                                       stats_file=a.stats_file)


def main(argv: list[str] | None = None) -> None:
    kubeconfig, config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s nodes: %(message)s")
    try:
        api = KubeApi.from_kubeconfig(kubeconfig, pool=config.heartbeat_workers + config.pod_workers + 4)
    except ChaoslabError as exc:
        raise SystemExit(f"nodes: {exc}") from exc
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Simulator(api, config).run(stop)


if __name__ == "__main__":
    main()
