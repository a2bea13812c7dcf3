"""Benchmark: the node simulator at scale — 500 nodes and a 5,000-pod Deployment by default.

Prints the time from creating the Deployment until every pod is Running, the simulator's CPU seconds, and
the worst lateness of a node-Lease renewal (it must stay far below the node-monitor grace period, or
nodes flap NotReady). As a reference in the same run it prints the same lab's time to create the
Deployment's pods at all (scheduled by the real scheduler), so the simulator's share is visible.
kube-scheduler and kube-controller-manager get `--kube-api-qps 200`: at their defaults (50 and 20 QPS)
pod creation alone would take over 4 minutes, measuring client-side throttling instead of the simulator.
Run as root with the binaries installed: `python bench/nodes_scale.py [--nodes 500 --pods 5000]`.
"""

from __future__ import annotations

import argparse
import json
import time

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.install import find_binaries
from chaoslab.lab.lifecycle import down, up

NS = "default"


def count(api: KubeApi, **selectors: str) -> int:
    """Pods matching, paging through the list (the server gives no remainingItemCount with selectors)."""
    total, token = 0, None
    while True:
        page = api.get(f"/api/v1/namespaces/{NS}/pods", limit=1000, **selectors,
                       **({"continue": token} if token else {}))
        total += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    config = LabConfig(name="benchscale", port_base=20443, nodes=args.nodes, kube_api_qps=200)
    layout = LabLayout(config)
    down(layout)
    started = time.monotonic()
    up(config, find_binaries(), timeout=600)
    print(f"lab with {args.nodes} nodes ready in {time.monotonic() - started:.1f} s")
    api = KubeApi.from_kubeconfig(layout.kubeconfig, timeout=30)
    try:
        labels = {"app": "scale"}
        api.create(f"/apis/apps/v1/namespaces/{NS}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scale"},
            "spec": {"replicas": args.pods, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}}})
        t0 = time.monotonic()
        all_scheduled = None
        while time.monotonic() - t0 < args.timeout:
            running = count(api, labelSelector="app=scale", fieldSelector="status.phase=Running")
            if all_scheduled is None and count(api, labelSelector="app=scale", fieldSelector="spec.nodeName=") == 0 \
                    and count(api, labelSelector="app=scale") == args.pods:
                all_scheduled = time.monotonic() - t0
            print(f"  t={time.monotonic() - t0:6.1f} s  running {running}/{args.pods}", flush=True)
            if running >= args.pods:
                break
            time.sleep(5)
        elapsed = time.monotonic() - t0
        stats = json.loads((layout.state_dir / "nodes-stats.json").read_text())
        not_ready = [n["metadata"]["name"] for n in api.get("/api/v1/nodes")["items"]
                     if any(c["type"] == "Ready" and c["status"] != "True" for c in n["status"]["conditions"])]
    finally:
        down(layout)
    print(f"\nnodes: {args.nodes}, pods: {args.pods}")
    print(f"all pods created and bound by the real scheduler (reference): "
          f"{all_scheduled:.1f} s" if all_scheduled else "all pods bound: not reached")
    print(f"all pods Running (simulator done):                           {elapsed:.1f} s")
    if all_scheduled:
        print(f"ratio running / bound: {elapsed / all_scheduled:.2f}")
    print(f"simulator CPU: {stats.get('cpu_seconds', 0):.1f} s; lease renewals {stats.get('lease_renewals')}; "
          f"worst renewal lateness {stats.get('worst_renewal_lateness_s', 0):.2f} s "
          f"(node-monitor grace {config.node_monitor_grace} s); nodes not Ready at the end: {len(not_ready)}")


if __name__ == "__main__":
    main()
