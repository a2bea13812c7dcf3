"""`api-overload`: a bounded load on the apiservers in the shapes that caused real outages — unpaginated
cluster-wide LISTs served from etcd, a relist storm of many watches dropped at once, bursts of writes from
many users — to see whether API Priority and Fairness keeps leader election and everything else alive.

    - kind: api-overload
      pattern: list          # list | relist | writes
      concurrency: 16        # workers (or watchers) at once, at most 64
      requests: 20000        # the whole run's budget, at most 100000
      rate: 0                # requests per second over all workers, 0 = unpaced, at most 1000
      users: 8               # distinct users (by impersonation) the requests come from
      seedObjects: 500       # list/relist: ConfigMaps created first so each LIST carries weight
      seedBytes: 8192

The load runs in its own process (`python -m chaoslab.faults.overload`, detached), which checks every
bound again and stops by itself at the end of the fault's duration, after its request budget, or at the
undo's SIGTERM. The requests come from users `chaoslab-load-N` in group `chaoslab:overload`
(impersonation), which this fault grants `view` cluster-wide (a ClusterRoleBinding) and `edit` in the
load's own namespace `chaoslab-overload-<tag>` (a RoleBinding), where the seed and write ConfigMaps live.

Undo (`stop-overload`, written before anything is created): stop the generator (SIGTERM, SIGKILL after
10 s), delete the ClusterRoleBinding and the namespace (with the seed and every object of the load),
disarm the dead-man's switch, and check that no generator is left. The switch, armed first, does the same
at `duration + deadman` if chaoslab was SIGKILLed (the generator itself has stopped at the duration by
then). The generator's per-second record (sent, answered by status, p50/p99) stays in
`$TMPDIR/chaoslab-overload/<tag>/stats.jsonl`.

Measure with the `apiserver-metrics` probe (APF rejections, queueing and wait, request latency by verb
and scope, from each apiserver's /metrics) and the `lease` and `node-lease` probes (`leaseRenewalGap`, `nodeLeaseRenewalGap`).
Timeline event: ``overload`` (the load as started, its bounds, the stats file).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from chaoslab.clients.hosts import Command
from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import ChaoslabError, InjectionError, RevertError
from chaoslab.faults.base import FaultParams, Injection, Record, SwitchedFault, Undo, ignore_events
from chaoslab.faults.netrules import cancel_dead_mans_switch, dead_mans_switch
from chaoslab.faults.overload import BOUNDS, GROUP, Load, process_pattern
from chaoslab.spec.durations import parse_duration
from chaoslab.targets import Target

HEAL_MARGIN = 60
LABEL = "chaoslab.io/overload"
STOP_TIMEOUT = 10.0
"""Seconds the generator gets to stop after SIGTERM before SIGKILL."""


@dataclass(frozen=True)
class ApiOverloadParams(FaultParams):
    pattern: str = "list"
    """list, relist or writes (default list)."""
    concurrency: int = 16
    """Workers (list, writes) or watchers (relist) at once, 1-64 (default 16)."""
    requests: int = 20000
    """The run's whole request budget, 1-100000 (default 20000); the load stops when it is spent."""
    rate: float = 0
    """Requests per second over all workers, at most 1000; 0 (default) = as fast as they go."""
    users: int = 8
    """Distinct users the requests come from, 1 to concurrency (default 8)."""
    seedObjects: int = 500  # camelCase fields: the YAML spelling, as build() passes them
    """list and relist: ConfigMaps created first in the load's namespace (default 500)."""
    seedBytes: int = 8192
    """Size of each seed ConfigMap in bytes (default 8192; at most 64 MiB in all)."""
    period: str | float = "10s"
    """relist: time between drops of every watch (default 10s)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the dead-man's switch cleans up if chaoslab did not (default 60)."""

    def load(self, namespace: str, until: float) -> Load:
        return Load(self.pattern, self.concurrency, self.requests, float(self.rate), self.users, namespace, until,
                    self.seedObjects if self.pattern != "writes" else 0, self.seedBytes,
                    parse_duration(self.period, "period"))

    def problems(self) -> list[tuple[str, str]]:
        try:
            load = self.load("x", time.time() + 1)
        except (ValueError, TypeError) as exc:
            return [("period", str(exc))]
        out = [p for p in load.problems(time.time()) if p[0] != "duration"]  # the experiment's, checked at resolve
        if isinstance(self.deadman, bool) or not isinstance(self.deadman, int) or self.deadman < 1:
            out.append(("deadman", f"{self.deadman!r}: give whole seconds, at least 1"))
        return out


class ApiOverload(SwitchedFault[ApiOverloadParams]):
    kind: ClassVar[str] = "api-overload"
    params_type: ClassVar[type] = ApiOverloadParams
    level: ClassVar[str] = "api"
    """Acts only through the Kubernetes API."""

    def resolve(self, target: Target, index: int) -> Injection:
        if self.duration > BOUNDS.duration:
            raise InjectionError(f"api-overload: the experiment's duration {self.duration:g} s is longer than the "
                                 f"load's bound, {BOUNDS.duration:g} s; shorten it")
        target.api()
        tag = f"o{index}-{uuid.uuid4().hex[:8]}"
        d = Path(tempfile.gettempdir()) / "chaoslab-overload" / tag
        params = {"tag": tag, "marker": f"chaoslab-{tag}", "namespace": f"chaoslab-overload-{tag}",
                  "binding": f"chaoslab-overload-{tag}", "dir": str(d), "switch": f"{d}.switch.json"}
        return Injection(self.kind, index, "kube-apiserver", self.params.pattern, ("api@lb",),
                         (Undo("stop-overload", params),))

    def generator_command(self, params: Mapping[str, Any], until: float) -> Command:
        load = self.params.load(params["namespace"], until)
        d = Path(params["dir"])
        return Command((sys.executable, "-m", "chaoslab.faults.overload", "--target-file", str(d / "target.json"),
                        "--pattern", load.pattern, "--concurrency", str(load.concurrency), "--requests",
                        str(load.requests), "--rate", f"{load.rate:g}", "--users", str(load.users), "--namespace",
                        load.namespace, "--seed-objects", str(load.seed_objects), "--seed-bytes",
                        str(load.seed_bytes), "--period", f"{load.period:g}", "--until", f"{until:.0f}", "--stats",
                        str(d / "stats.jsonl"), "--detach", "--marker", params["marker"]))

    def switch_command(self, params: Mapping[str, Any]) -> Command:
        heal = Command((sys.executable, "-m", "chaoslab.faults.api_overload", "--heal", params["switch"]))
        return Command(dead_mans_switch([heal], self.deadline(), params["marker"]))

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        p = injection.undo[0].params
        return ([" ".join(self.switch_command(p).argv[:3]) + f" ... (clean up after {self.deadline()} s)",
                 (f"create namespace {p['namespace']}, RoleBinding edit and ClusterRoleBinding {p['binding']} "
                 f"(view) for group {GROUP}"),
                 "start: " + " ".join(self.generator_command(p, time.time() + self.duration).argv),
                 (f"bounds: concurrency <= {BOUNDS.concurrency}, requests <= {BOUNDS.requests}, rate <= "
                 f"{BOUNDS.rate:g}/s, duration <= {BOUNDS.duration:g} s")], stop_lines(p))

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        p = injection.undo[0].params
        until = time.time() + self.duration
        try:
            api = target.api()
            d = Path(p["dir"])
            d.mkdir(parents=True, exist_ok=True)
            (d / "target.json").write_text(json.dumps({"target": target.describe()}))
            Path(p["switch"]).write_text(json.dumps({"target": target.describe(), "undo": dict(p)}))
            subprocess.run(self.switch_command(p).argv, check=True, timeout=10)
            grant(api, p)
            wait_granted(api, p)
            done = subprocess.run(self.generator_command(p, until).argv, capture_output=True, text=True, timeout=60,
                                  check=False)
            if done.returncode != 0:
                raise InjectionError(f"the load generator exited {done.returncode}: {done.stderr.strip()[-300:]}")
            wait_seeded(Path(p["dir"]) / "stats.jsonl", p["marker"])
        except (ChaoslabError, OSError, subprocess.SubprocessError) as exc:
            try:
                stop_overload(target, p)
            except ChaoslabError as again:
                raise InjectionError(f"api-overload: could not start ({exc}); and the undo failed too ({again}); "
                                     f"run `chaoslab recover`") from exc
            raise InjectionError(f"api-overload: could not start the {self.params.pattern} load ({exc}); "
                                 f"cleaned up again") from exc
        load = self.params.load(p["namespace"], until)
        record("overload", fault=self.kind, index=injection.index, **{k: v for k, v in asdict(load).items()},
               bounds=asdict(BOUNDS), stats=str(Path(p["dir"]) / "stats.jsonl"))


SEED_TIMEOUT = 300.0
"""Seconds the seed may take before the injection counts as failed."""


def wait_seeded(stats: Path, marker: str) -> None:
    """Return once the generator has created its seed and starts the load (its `seeded` line), so the load
    runs when `inject` returns and faults injected after this one meet it."""
    deadline = time.monotonic() + SEED_TIMEOUT
    while time.monotonic() < deadline:
        if stats.exists() and '"event": "seeded"' in stats.read_text():
            return
        if not _running(process_pattern(marker)):
            raise InjectionError(f"the load generator exited before its load started; see {stats}")
        time.sleep(0.2)
    raise InjectionError(f"the load generator did not finish its seed within {SEED_TIMEOUT:g} s; see {stats}")


def grant(api: KubeApi, p: Mapping[str, Any]) -> None:
    """The load's namespace, `edit` there and `view` cluster-wide for its users' group."""
    labels = {LABEL: p["tag"]}
    subjects = [{"kind": "Group", "name": GROUP, "apiGroup": "rbac.authorization.k8s.io"}]
    api.create("/api/v1/namespaces", {"metadata": {"name": p["namespace"], "labels": labels}})
    api.create(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{p['namespace']}/rolebindings", {
        "metadata": {"name": "chaoslab-overload", "labels": labels}, "subjects": subjects,
        "roleRef": {"kind": "ClusterRole", "name": "edit", "apiGroup": "rbac.authorization.k8s.io"}})
    api.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "metadata": {"name": p["binding"], "labels": labels}, "subjects": subjects,
        "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"}})


GRANT_TIMEOUT = 30.0
"""Seconds the apiserver's RBAC caches may take to see the new bindings."""


def wait_granted(api: KubeApi, p: Mapping[str, Any]) -> None:
    """Return once the apiserver authorizes the load's users as granted: its RBAC authorizer reads the
    bindings from a cache, and a load started at once was refused (403) on every request. Asked with a
    SelfSubjectAccessReview made as one of those users (impersonation), which every user may create."""
    user = api.with_pool(1)
    user.session.headers.update({"Impersonate-User": "chaoslab-load-0", "Impersonate-Group": GROUP})
    checks = [{"namespace": p["namespace"], "verb": "patch", "resource": "configmaps"},
              {"verb": "list", "resource": "configmaps"}]
    deadline = time.monotonic() + GRANT_TIMEOUT
    while True:
        allowed = [user.create("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": check}})["status"].get("allowed") for check in checks]
        if all(allowed):
            return
        if time.monotonic() > deadline:
            raise InjectionError(f"the load's users were not authorized {GRANT_TIMEOUT:g} s after their bindings "
                                 f"were made ({checks}: {allowed})")
        time.sleep(0.2)


def stop_lines(p: Mapping[str, Any]) -> list[str]:
    return [f"stop the load generator {p['marker']} (SIGTERM, SIGKILL after {STOP_TIMEOUT:g} s)",
            f"delete ClusterRoleBinding {p['binding']} and namespace {p['namespace']}",
            f"disarm the dead-man's switch {p['marker']}"]


def _running(pattern: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout
    return out.split()


def stop_overload(target: Target, p: Mapping[str, Any], disarm: bool = True) -> None:
    """The `stop-overload` undo; `RevertError` when a generator or the binding is left."""
    pattern = process_pattern(p["marker"])
    subprocess.run(["pkill", "-TERM", "-f", pattern], check=False, timeout=10)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _running(pattern) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running(pattern):
        subprocess.run(["pkill", "-KILL", "-f", pattern], check=False, timeout=10)
        time.sleep(0.5)
    api = target.api()
    api.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{p['binding']}")
    try:
        api.delete(f"/api/v1/namespaces/{p['namespace']}", propagationPolicy="Background")
    except ApiError as exc:
        if exc.status != 409:  # 409: already being deleted
            raise
    if disarm:
        subprocess.run(cancel_dead_mans_switch(p["marker"]).argv, check=False, timeout=10)
    Path(p["switch"]).unlink(missing_ok=True)
    Path(p["dir"], "target.json").unlink(missing_ok=True)
    left = [f"load generator pid {pid}" for pid in _running(pattern)]
    if api.request("GET", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{p['binding']}").status_code != 404:
        left.append(f"ClusterRoleBinding {p['binding']}")
    ns = api.request("GET", f"/api/v1/namespaces/{p['namespace']}")
    if ns.status_code == 200 and not ns.json().get("metadata", {}).get("deletionTimestamp"):
        left.append(f"namespace {p['namespace']}")
    if left:
        raise RevertError(f"api-overload {p['tag']}: left after the undo: {', '.join(left)}")


def main(argv: Sequence[str] | None = None) -> int:
    """What the dead-man's switch runs: the undo in the switch file, on the target described there."""
    from chaoslab.targets import target_from_description

    parser = argparse.ArgumentParser(prog="python -m chaoslab.faults.api_overload")
    parser.add_argument("--heal", type=Path, required=True, help="switch file written by the fault")
    args = parser.parse_args(argv)
    if not args.heal.exists():
        return 0
    data = json.loads(args.heal.read_text())
    for attempt in range(5):
        try:
            stop_overload(target_from_description(data["target"]), data["undo"], disarm=False)
            return 0
        except ChaoslabError as exc:
            print(f"api-overload heal: {exc}", file=sys.stderr)
            time.sleep(2 + 4 * attempt)
    return 1


if __name__ == "__main__":
    sys.exit(main())
