"""Benchmark: `lab up` to ready, against the physical floor measured in the same run.

Floor: one etcd member and one kube-apiserver started bare (plain loopback, no namespaces, no supervisor,
no load balancer) until the apiserver's /readyz answers 200. Lab: a full HA lab (3 etcd, 3 apiservers
behind haproxy, 3+3 leader-elected scheduler/controller-manager, simulated nodes) until `lab up` returns,
i.e. etcd has a leader, every apiserver is ready, both Leases are held and every node is Ready.
Target: lab ≤ 2 × floor. Run as root with the binaries installed: `python bench/lab_up.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import requests
import urllib3

from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.install import Binaries, find_binaries
from chaoslab.lab.lifecycle import down, up
from chaoslab.lab.pki import Pki

ETCD_PORT, ETCD_PEER, APISERVER_PORT = 22379, 22380, 22443


def floor_once(bins: Binaries, limit: float = 120) -> float:
    """Seconds from starting a bare etcd + kube-apiserver to /readyz 200."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-floor-") as tmp:
        d = Path(tmp)
        sa = Pki.create(d / "pki").service_account_keys()
        started = time.monotonic()
        etcd = subprocess.Popen(
            [str(bins.etcd), f"--data-dir={d / 'etcd'}",
             f"--listen-client-urls=http://127.0.0.1:{ETCD_PORT}",
             f"--advertise-client-urls=http://127.0.0.1:{ETCD_PORT}",
             f"--listen-peer-urls=http://127.0.0.1:{ETCD_PEER}",
             f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER}",
             f"--initial-cluster=default=http://127.0.0.1:{ETCD_PEER}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        apiserver = subprocess.Popen(
            [str(bins.kube_apiserver), f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
             f"--secure-port={APISERVER_PORT}", "--insecure-port=0", "--bind-address=127.0.0.1",
             f"--cert-dir={d / 'certs'}", "--service-account-issuer=https://kubernetes.default.svc",
             f"--service-account-key-file={sa.cert}", f"--service-account-signing-key-file={sa.key}",
             "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC"],
            stdout=subprocess.DEVNULL, stderr=(d / "apiserver.log").open("w"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                while True:
                    try:
                        url = f"https://127.0.0.1:{APISERVER_PORT}/readyz"
                        if requests.get(url, verify=False, timeout=1).status_code == 200:
                            return time.monotonic() - started
                    except requests.RequestException:
                        pass
                    if time.monotonic() - started > limit:
                        tail = (d / "apiserver.log").read_text().splitlines()[-5:]
                        raise RuntimeError("bare apiserver not ready within 120 s:\n" + "\n".join(tail))
                    time.sleep(0.05)
        finally:
            for proc in (apiserver, etcd):
                proc.terminate()
                proc.wait(timeout=30)


def lab_once(bins: Binaries, config: LabConfig) -> float:
    layout = LabLayout(config)
    down(layout)
    started = time.monotonic()
    up(config, bins, timeout=240)
    seconds = time.monotonic() - started
    down(layout)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--profile", choices=["ha", "small"], default="ha")
    args = parser.parse_args()
    bins = find_binaries()
    config = LabConfig(name="benchup", port_base=19443, nodes=args.nodes, profile=args.profile)
    floors, labs = [], []
    for i in range(args.runs):
        floors.append(floor_once(bins))
        labs.append(lab_once(bins, config))
        print(f"run {i + 1}: floor {floors[-1]:.2f} s   lab {labs[-1]:.2f} s")
    floor, lab = statistics.median(floors), statistics.median(labs)
    print(f"\nbare etcd + apiserver to /readyz (floor), median of {args.runs}: {floor:.2f} s")
    print(f"{args.profile} lab up to ready ({args.nodes} nodes), median of {args.runs}:       {lab:.2f} s")
    print(f"ratio lab / floor: {lab / floor:.2f}  (target <= 2.00: {'met' if lab <= 2 * floor else 'NOT met'})")


if __name__ == "__main__":
    main()
