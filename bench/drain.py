"""Benchmark: drain one node carrying 100 pods with `kubectl drain` (the reference) and with chaoslab's
`drain-node` fault, alternately, in the same lab and the same run. Target: chaoslab no slower than kubectl.

A lab of its own comes up (`small` profile, 3 simulated nodes; name `dbench`, port base 27443). One node is
labelled `chaoslab.io/drainbench=target` and a Deployment of `--pods` pause pods selects it, so all of them
land there. Each round drains that node twice, kubectl first:

- kubectl: `kubectl --kubeconfig LAB drain NODE --ignore-daemonsets --delete-emptydir-data --force
  --timeout Ns`, timed from the process start until it returns (it cordons, evicts every pod and waits,
  per pod, until the pod is gone);
- chaoslab: `build("drain-node", ...)` with the same flags (`namespaces: ["*"]` and `allowKubeSystem`, as
  kubectl touches every namespace) against a fresh `LabTarget`, timed over `resolve` + `inject`: the same
  code `chaoslab run` executes, which also returns only once every evicted pod is gone.

Both must return with no pod of the Deployment left on the node (checked right after each drain). The
replacements cannot go anywhere else (the node selector), so they wait Pending; the node is then
uncordoned through the API and the next drain starts once all `--pods` are Running and Ready on it again.
Prints per tool: rounds, median/min/max seconds, pods evicted, pods left on the node at return, and the
ratio of its median to kubectl's; chaoslab's drain also split into plan, evictions and the wait for the
pods to be gone (from its timeline events). The lab goes down at the end, also on error or Ctrl-C.

kubectl: `--kubectl PATH`, else `$KUBECTL`, else `kubectl` on PATH. The issue asks for Debian's
`kubernetes-client` (1.20.2, the lab's own version); where another kubectl owns /usr/bin/kubectl, unpack
the package beside it: `apt-get download kubernetes-client && dpkg-deb -x kubernetes-client_*.deb DIR`,
then `--kubectl DIR/usr/bin/kubectl`. Without any kubectl the benchmark says so and measures chaoslab only.
Run as root with the binaries installed: `python bench/drain.py [--rounds 3] [--pods 100] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import ChaoslabError
from chaoslab.faults import build
from chaoslab.faults.base import apply_undo
from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.install import find_binaries
from chaoslab.lab.lifecycle import down, up
from chaoslab.targets.lab import LabTarget

NS = "drainbench"
APP = "drainbench"
NODE_LABEL = "chaoslab.io/drainbench"
EVICTED = re.compile(r"^pod/\S+ evicted$")
out = Console(width=None if sys.stdout.isatty() else 160)


@dataclass
class Tool:
    name: str
    version: str = ""
    seconds: list[float] = field(default_factory=list)
    evicted: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    """Pods of the Deployment still on the node when the drain returned (should be 0)."""
    phases: list[dict[str, float]] = field(default_factory=list)
    """Per round, seconds from the start to milestones (`first eviction`, `last eviction`, `first gone`,
    `gone`: the last pod gone). kubectl's come from its output lines as they arrive: `evicting pod` is
    printed before the request is sent, `pod/NAME evicted` once the pod is gone."""
    errors: list[str] = field(default_factory=list)
    throttled: list[int] = field(default_factory=list)
    """kubectl only: its log lines about client-side throttling (a request held back over 1 s)."""

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.name, "version": self.version, "seconds": [round(s, 3) for s in self.seconds],
                "evicted": self.evicted, "leftOnNode": self.left, "phases": self.phases, "errors": self.errors,
                "throttled": self.throttled}


# ---- the workload ---------------------------------------------------------------------------------
def ours_on(api: KubeApi, node: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/api/v1/namespaces/{NS}/pods", labelSelector=f"app={APP}",
                                          fieldSelector=f"spec.nodeName={node}")["items"]
    return items


def ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def create_workload(api: KubeApi, node: str, pods: int) -> None:
    api.patch(f"/api/v1/nodes/{node}", {"metadata": {"labels": {NODE_LABEL: "target"}}})
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    labels = {"app": APP}
    api.create(f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP},
        "spec": {"replicas": pods, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"nodeSelector": {NODE_LABEL: "target"},
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}}})


def wait_placed(api: KubeApi, node: str, pods: int, timeout: float) -> float:
    """Seconds until all `pods` are Running and Ready on `node` and none is Pending or terminating."""
    started = time.monotonic()
    while True:
        items = api.get(f"/api/v1/namespaces/{NS}/pods", labelSelector=f"app={APP}")["items"]
        good = [p for p in items if p["spec"].get("nodeName") == node and ready(p)]
        if len(good) == pods == len(items):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{len(good)}/{pods} pods Ready on {node} ({len(items)} pods in all) "
                               f"after {timeout:.0f} s")
        time.sleep(0.5)


def uncordon(api: KubeApi, node: str) -> None:
    api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": None}})


# ---- the two drains -------------------------------------------------------------------------------
def kubectl_version(kubectl: str) -> str:
    try:
        done = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True,
                              timeout=30, check=True)
        return str(json.loads(done.stdout)["clientVersion"]["gitVersion"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        return f"unknown ({exc})"


def drain_kubectl(tool: Tool, kubectl: str, kubeconfig: Path, cache_dir: str, node: str, timeout: float) -> None:
    """Run kubectl drain, reading its output as it comes to time its milestones."""
    cmd = [kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", cache_dir, "drain", node,
           "--ignore-daemonsets", "--delete-emptydir-data", "--force", f"--timeout={timeout:.0f}s"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, marks = [], {}
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic() - started
        line = line.rstrip("\n")
        lines.append(line)
        if line.startswith("evicting pod"):
            marks.setdefault("first eviction", now)
            marks["last eviction"] = now
        elif EVICTED.match(line):
            marks.setdefault("first gone", now)
            marks["gone"] = now  # kubectl prints `pod/x evicted` once the pod is gone
    rc = proc.wait()
    tool.seconds.append(time.monotonic() - started)
    tool.evicted.append(sum(bool(EVICTED.match(x)) for x in lines))
    tool.phases.append({k: round(v, 3) for k, v in marks.items()})
    # client-go logs requests its own rate limiter held back for over a second (at most one line a second).
    tool.throttled.append(sum("hrottling request" in x or "client-side throttling" in x for x in lines))
    if rc != 0:
        tool.errors.append(f"kubectl exited {rc}: " + " | ".join(lines[-5:]))


def drain_chaoslab(tool: Tool, layout: LabLayout, api: KubeApi, node: str, timeout: float,
                   parallelism: int | None = None) -> None:
    """resolve + inject of the drain-node fault, as the runner calls them; uncordon comes after the clock
    (and after counting what the drain left on the node)."""
    events: list[tuple[float, str, dict[str, Any]]] = []

    def record(kind: str, **detail: Any) -> None:
        events.append((time.monotonic(), kind, detail))

    fault = build("drain-node", {"nodes": [node], "namespaces": ["*"], "allowKubeSystem": True,
                                 "ignoreDaemonSets": True, "deleteEmptyDirData": True, "force": True,
                                 "timeout": f"{timeout:.0f}s"}
                  | ({"parallelism": parallelism} if parallelism else {}))
    target = LabTarget(layout)
    started = time.monotonic()
    injection = fault.resolve(target, 0)
    try:
        fault.inject(target, injection, record=record)  # type: ignore[call-arg]
        tool.seconds.append(time.monotonic() - started)
        tool.left.append(len(ours_on(api, node)))
    finally:
        for undo in injection.undo:
            apply_undo(target, undo)
    drain = [d for _, k, d in events if k == "drain"]
    tool.evicted.append(drain[0]["evicted"] if drain else 0)
    if drain and not drain[0]["complete"]:
        tool.errors.append(f"drain incomplete: {drain[0]}")

    def at(kind: str, outcome: str, last: bool) -> float | None:
        ts = [t for t, k, d in events if k == kind and d.get("outcome") == outcome]
        return round((max(ts) if last else min(ts)) - started, 3) if ts else None

    cordon = [t for t, k, _ in events if k == "cordon"]
    marks = {"cordon": round(cordon[0] - started, 3) if cordon else None,
             "first eviction": at("eviction", "evicted", False), "last eviction": at("eviction", "evicted", True),
             "first gone": at("eviction", "terminated", False), "gone": at("eviction", "terminated", True)}
    tool.phases.append({k: v for k, v in marks.items() if v is not None})


# ---- output ---------------------------------------------------------------------------------------
COLUMNS = ("tool", "rounds", "median", "min", "max", "pods evicted", "left on node", "median vs kubectl")


def rows(tools: list[Tool]) -> list[list[str]]:
    ref = tools[0] if tools and tools[0].name == "kubectl" and tools[0].seconds else None
    table = []
    for t in tools:
        s = t.seconds
        ratio = "1.00 (ref)" if t is ref else (
            f"{statistics.median(s) / statistics.median(ref.seconds):.2f}" if ref and s else "-")
        table.append([f"{t.name} {t.version}".strip(), str(len(s)),
                      *(f"{f(s):.2f} s" if s else "-" for f in (statistics.median, min, max)),
                      "/".join(map(str, t.evicted)) or "-", "/".join(map(str, t.left)) or "-", ratio])
    return table


def phases_line(t: Tool) -> str:
    if not t.phases:
        return ""
    keys = [k for k in ("cordon", "first eviction", "last eviction", "first gone", "gone") if any(k in p for p in t.phases)]
    parts = []
    for k in keys:
        vals = [p[k] for p in t.phases if k in p]
        parts.append(f"{k} {statistics.median(vals):.2f} s")
    return f"{t.name}: medians from start: " + ", ".join(parts)


def report(tools: list[Tool], meta: dict[str, Any], as_markdown: bool = False) -> None:
    if as_markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
        print("\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows(tools)]))
    else:
        table = Table(title=f"drain a node carrying {meta['pods']} pods")
        for col in COLUMNS:
            table.add_column(col, justify="left" if col == "tool" else "right")
        for r in rows(tools):
            table.add_row(*r)
        out.print(table)
    for t in tools:
        if line := phases_line(t):
            out.print(line)
        if t.throttled:
            out.print(f"{t.name}: client-side throttling log lines per drain: {'/'.join(map(str, t.throttled))}")
        for e in t.errors:
            out.print(f"[red]{t.name}:[/] {e}")
    if meta.get("kubectl_missing"):
        out.print(f"[yellow]kubectl: {meta['kubectl_missing']}; no reference, no ratio[/]")
    out.print(f"load average (1 min) before/after each round: "
              f"{', '.join('/'.join(f'{x:.2f}' for x in pair) for pair in meta['load'])}; "
              f"{meta.get('cpus')} CPUs; total {meta['seconds']:.0f} s")


# ---- main ----------------------------------------------------------------------------------------
def find_kubectl(given: str | None) -> tuple[str | None, str]:
    """(path, why not) for the kubectl to use."""
    name = given or os.environ.get("KUBECTL") or "kubectl"
    path = shutil.which(name)
    if path is None:
        return None, (f"{name!r} not found (install Debian's kubernetes-client, or unpack it and pass "
                      f"--kubectl DIR/usr/bin/kubectl)")
    return path, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="drains per tool, alternating, kubectl first (3)")
    parser.add_argument("--pods", type=int, default=100, help="pods on the drained node (100)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each drain may take (300)")
    parser.add_argument("--parallelism", type=int, default=None,
                        help="chaoslab's evictions in flight (default: the drain-node default)")
    parser.add_argument("--kubectl", default=None, help="kubectl to run (default $KUBECTL, else on PATH)")
    parser.add_argument("--lab", default="dbench")
    parser.add_argument("--port-base", type=int, default=27443)
    parser.add_argument("--json", type=Path, default=None, help="also write every round's figures here")
    parser.add_argument("--show", type=Path, default=None, metavar="JSON",
                        help="print the table of an earlier --json file instead of measuring")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    if args.show:
        data = json.loads(args.show.read_text())
        tools = [Tool(t["tool"], t["version"], t["seconds"], t["evicted"], t["leftOnNode"], t["phases"],
                      t["errors"], t.get("throttled", [])) for t in data["tools"]]
        report(tools, data, args.markdown)
        return

    kubectl, missing = find_kubectl(args.kubectl)
    tools = ([Tool("kubectl", kubectl_version(kubectl))] if kubectl else []) + [Tool("chaoslab")]
    meta: dict[str, Any] = {"pods": args.pods, "rounds": args.rounds, "cpus": os.cpu_count(), "load": [],
                            "kubectl": kubectl, "kubectl_missing": missing}
    if missing:
        out.print(f"[yellow]kubectl: {missing}; measuring chaoslab alone[/]")
    config = LabConfig(name=args.lab, port_base=args.port_base, profile="small", nodes=3)
    layout = LabLayout(config)
    down(layout)
    started = time.monotonic()
    out.print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        with tempfile.TemporaryDirectory(prefix="chaoslab-drainbench-") as cache_dir:
            up(config, find_binaries(), timeout=240)
            out.print(f"lab up in {time.monotonic() - started:.1f} s")
            api = KubeApi.from_kubeconfig(layout.kubeconfig, timeout=30)
            nodes = sorted(n["metadata"]["name"] for n in
                           api.get("/api/v1/nodes", labelSelector="chaoslab.io/simulated=true")["items"])
            node = nodes[0]
            create_workload(api, node, args.pods)
            out.print(f"{args.pods} pods Ready on {node} in {wait_placed(api, node, args.pods, 300):.1f} s")
            for i in range(1, args.rounds + 1):
                load_before = os.getloadavg()[0]
                for tool in tools:
                    if tool.name == "kubectl":
                        assert kubectl is not None
                        drain_kubectl(tool, kubectl, layout.kubeconfig, cache_dir, node, args.timeout)
                        tool.left.append(len(ours_on(api, node)))  # before uncordon: what the drain left
                        uncordon(api, node)
                    else:
                        drain_chaoslab(tool, layout, api, node, args.timeout, args.parallelism)  # and uncordons
                    back = wait_placed(api, node, args.pods, 300)
                    out.print(f"  round {i} {tool.name}: {tool.seconds[-1]:.2f} s, evicted {tool.evicted[-1]}, "
                              f"left on node {tool.left[-1]}; {args.pods} pods back in {back:.1f} s "
                              f"(load {os.getloadavg()[0]:.2f})")
                meta["load"].append([load_before, os.getloadavg()[0]])
    except (ChaoslabError, TimeoutError, KeyboardInterrupt) as exc:
        out.print(f"[red]stopped:[/] {exc or 'interrupted'}; showing what was measured")
    finally:
        down(layout)
    meta["seconds"] = time.monotonic() - started
    report(tools, meta, args.markdown)
    if args.json:
        args.json.write_text(json.dumps(meta | {"tools": [t.to_json() for t in tools]}, indent=1))
        out.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
