"""Benchmark: what does attaching strace to etcd cost, before any delay is injected?

`disk-latency` delays etcd's syncs by attaching `strace` to the member (chaoslab.faults.disk_latency). An
attached tracer without seccomp-bpf (strace ignores `--seccomp-bpf` for `-p`) stops the tracee at every
system call, not only the traced ones, so etcd pays for every futex, epoll_pwait, read and write. This
measures that price on a standalone single-member etcd (its own data directory, loopback ports, no lab
needed): sequential puts, latency p50/p99 and throughput, and etcd's own WAL fsync histogram, in three
modes: no tracer; strace attached tracing fdatasync/fsync with no injection; strace injecting 0 ms
(`delay_enter=0`, the same path a real injection takes). Prints a table.

    python bench/strace_overhead.py [--puts 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import etcd3

CLIENT, PEER = 18579, 18580


def _fsync_sum() -> tuple[float, float]:
    """(sum seconds, count) of etcd_disk_wal_fsync_duration_seconds."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{CLIENT}/metrics", timeout=5).read().decode()
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("etcd_disk_wal_fsync_duration_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("etcd_disk_wal_fsync_duration_seconds_count"):
            count = float(line.split()[-1])
    return total, count


def _puts(client: etcd3.Etcd3Client, n: int) -> list[float]:
    value = "x" * 1024
    out = []
    for i in range(n):
        t = time.perf_counter()
        client.put(f"/bench/{i % 100}", value)
        out.append(time.perf_counter() - t)
    return out


def _tracer(pid: int, inject: bool) -> subprocess.Popen[bytes]:
    argv = ["strace", "-f", "-qq", "-o", "/dev/null", "-p", str(pid), "-e", "trace=fdatasync,fsync"]
    if inject:
        argv += ["-e", "inject=fdatasync,fsync:delay_enter=0"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # attached once the tracee names a tracer
        status = Path(f"/proc/{pid}/status").read_text()
        if "TracerPid:\t0" not in status:
            return proc
        time.sleep(0.05)
    raise RuntimeError("strace did not attach")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--puts", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="chaoslab-bench-etcd-", dir="/var/tmp"))
    etcd = subprocess.Popen(
        ["etcd", "--name", "bench", "--data-dir", str(data / "etcd"),
         "--listen-client-urls", f"http://127.0.0.1:{CLIENT}", "--advertise-client-urls", f"http://127.0.0.1:{CLIENT}",
         "--listen-peer-urls", f"http://127.0.0.1:{PEER}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{PEER}",
         "--initial-cluster", f"bench=http://127.0.0.1:{PEER}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = etcd3.client(port=CLIENT, timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.status()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        _puts(client, 200)  # warm-up
        results: dict[str, list[tuple[list[float], float]]] = {"none": [], "attached": [], "inject 0 ms": []}
        for _ in range(args.rounds):
            for mode, rounds in results.items():
                tracer = _tracer(etcd.pid, mode == "inject 0 ms") if mode != "none" else None
                s0, c0 = _fsync_sum()
                t0 = time.perf_counter()
                lat = _puts(client, args.puts)
                wall = time.perf_counter() - t0
                s1, c1 = _fsync_sum()
                if tracer is not None:
                    tracer.send_signal(signal.SIGTERM)
                    tracer.wait(10)
                rounds.append((lat, (s1 - s0) / max(1.0, c1 - c0)))
                print(f"  {mode}: {args.puts / wall:.0f} puts/s", flush=True)
        print(f"{'mode':<14}{'p50 ms':>9}{'p99 ms':>9}{'puts/s':>9}{'wal fsync mean ms':>19}")
        for mode, rounds in results.items():
            lat = sorted(x for r in rounds for x in r[0])
            p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
            rate = len(lat) / sum(lat)
            fsync = statistics.mean(r[1] for r in rounds)
            print(f"{mode:<14}{p50 * 1000:>9.2f}{p99 * 1000:>9.2f}{rate:>9.0f}{fsync * 1000:>19.3f}")
        client.close()
    finally:
        etcd.terminate()
        etcd.wait(10)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
