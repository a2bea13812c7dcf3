"""Bringing a lab up and down: state directory, PKI, network, supervisor, readiness, and the sweep that
proves nothing was left behind. Called by the CLI (`chaoslab lab up/down`) and the integration tests.

`up` refuses to start over anything that is already there (a running lab of the same name, its namespaces,
or a busy port) instead of silently sharing it; `down` is safe to run twice and sweeps by evidence (the
namespaces, and every process whose command line names the lab's state directory or that lives in one of
its namespaces), not only by what the supervisor remembers, so a crashed supervisor cannot leak processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaoslab.errors import LabError, SpecError
from chaoslab.lab import network
from chaoslab.lab.components import haproxy_config, process_specs
from chaoslab.lab.config import EtcdTimings, LabConfig, LabLayout, LeaderElection
from chaoslab.lab.install import Binaries
from chaoslab.lab.pki import create_lab_pki

Progress = Callable[[str], None]


# ---- the saved plan ---------------------------------------------------------------------------------
def config_to_json(config: LabConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    out["state_root"] = str(config.state_root)
    return out


def config_from_json(data: dict[str, Any]) -> LabConfig:
    data = dict(data)
    data["state_root"] = Path(data["state_root"])
    data["leader_election"] = LeaderElection(**data["leader_election"])
    data["etcd"] = EtcdTimings(**data["etcd"])
    return LabConfig(**data)


def saved_layout(name: str, state_root: Path | None = None) -> LabLayout:
    """The layout of the lab called `name`, from its saved plan (so ports and sizes chosen at `up` are
    honoured); the defaults when there is no plan."""
    base = LabConfig(name=name) if state_root is None else LabConfig(name=name, state_root=state_root)
    layout = LabLayout(base)
    if layout.plan_file.exists():
        return LabLayout(config_from_json(json.loads(layout.plan_file.read_text())["config"]))
    return layout


# ---- processes --------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def supervisor_pid(layout: LabLayout) -> int | None:
    """The running supervisor's pid, or None."""
    try:
        pid = int(layout.supervisor_pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def lab_processes(layout: LabLayout) -> list[int]:
    """Pids of every process that belongs to the lab, whoever started it."""
    marker = str(layout.state_dir).encode()
    # Only our own kinds of program: a user's `tail -f` of a lab log also names the state directory.
    ours = (b"haproxy", b"python", b"etcd", b"kube-", b"ip", b"unshare", b"sh")
    ns_inodes = set()
    for ns in network.existing(layout):
        try:
            ns_inodes.add(os.stat(network.NETNS_DIR / ns).st_ino)
        except FileNotFoundError:
            pass
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            program = os.path.basename(cmdline.split(b"\0", 1)[0])
            if marker in cmdline and program.startswith(ours) or ns_inodes and os.stat(entry / "ns" / "net").st_ino in ns_inodes:
                out.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return sorted(out)


def leftovers(layout: LabLayout) -> list[str]:
    """What of the lab still exists: processes, namespaces, state. Empty after a clean `down`."""
    out = [f"process {pid}" for pid in lab_processes(layout)]
    out += [f"network namespace {ns}" for ns in network.existing(layout)]
    if layout.state_dir.exists():
        out.append(f"state directory {layout.state_dir}")
    return out


# ---- up -----------------------------------------------------------------------------------------------
def _check_ports_free(layout: LabLayout) -> None:
    busy = []
    for port in layout.ports:
        with socket.socket() as s:
            # As haproxy binds: connections of a previous lab lingering in TIME_WAIT do not count.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    if busy:
        raise LabError(
            f"ports {', '.join(map(str, busy))} on 127.0.0.1 are in use (another lab?); "
            f"choose other ports with --port-base, or run `chaoslab lab down` for the lab using them"
        )


def prepare(layout: LabLayout, bins: Binaries) -> None:
    """Write the state directory: PKI, kubeconfigs, haproxy config, and the plan the supervisor runs."""
    if layout.state_dir.exists():
        shutil.rmtree(layout.state_dir)
    for d in (layout.state_dir, layout.log_dir, layout.nodes_control_dir, layout.state_dir / "hold",
              layout.state_dir / "kubeconfigs"):
        d.mkdir(parents=True, exist_ok=True)
    for h in layout.hosts:
        layout.data_dir(h).mkdir(parents=True, exist_ok=True)
    create_lab_pki(layout)
    layout.haproxy_config.write_text(haproxy_config(layout))
    plan = {
        "config": config_to_json(layout.config),
        "processes": [p.to_json() for p in process_specs(layout, bins)],
    }
    layout.plan_file.write_text(json.dumps(plan, indent=1))


def up(config: LabConfig, bins: Binaries, *, progress: Progress = lambda _: None, timeout: float = 240.0) -> LabLayout:
    """Start a lab and wait until it is ready (see `chaoslab.lab.status.readiness`)."""
    if problems := config.problems():
        raise SpecError([f"lab {p}" for p in problems])
    layout = LabLayout(config)
    if pid := supervisor_pid(layout):
        raise LabError(f"lab {config.name!r} is already up (supervisor pid {pid}); "
                       f"`chaoslab lab down --name {config.name}` first, or choose another --name")
    if stale := leftovers(layout):
        raise LabError(f"lab {config.name!r} left {'; '.join(stale[:5])}; "
                       f"run `chaoslab lab down --name {config.name}` first")
    _check_ports_free(layout)
    progress("writing certificates, kubeconfigs and the process plan")
    prepare(layout, bins)
    progress("creating network namespaces and the lab bridge")
    network.create(layout)
    progress("starting the supervisor")
    log = (layout.log_dir / "supervisor.log").open("a")
    subprocess.Popen(
        [sys.executable, "-m", "chaoslab.lab.supervisor", str(layout.state_dir)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    from chaoslab.lab.status import wait_ready  # deferred: pulls in the API and etcd clients

    wait_ready(layout, timeout=timeout, progress=progress)
    return layout


# ---- down ---------------------------------------------------------------------------------------------
def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        for sig in (signal.SIGKILL, signal.SIGCONT):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def down(layout: LabLayout, *, progress: Progress = lambda _: None) -> list[str]:
    """Stop every process, delete the namespaces and the state. Returns what could not be removed."""
    if pid := supervisor_pid(layout):
        progress(f"stopping the supervisor (pid {pid}) and its processes")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    for _ in range(50):
        pids = lab_processes(layout)
        if not pids:
            break
        _kill_all(pids)
        time.sleep(0.1)
    progress("removing network namespaces")
    network.destroy(layout)
    if layout.state_dir.exists():
        progress(f"removing {layout.state_dir}")
        shutil.rmtree(layout.state_dir, ignore_errors=True)
    return leftovers(layout)
