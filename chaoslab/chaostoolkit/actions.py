"""Chaos Toolkit actions (python provider, module `chaoslab.chaostoolkit.actions`): inject one chaoslab
fault, and revert it as a rollback. `chaos discover chaoslab` lists every function in `__all__`.

Undo as data, on disk before the cluster is touched, as in a chaoslab run: each injection gets a pending
directory `RUNS_DIR/chaostoolkit-KEY/` holding `undo.json` and `target.json` (so `chaoslab recover` replays
it after a crash). `revert_fault` with the same `key` applies that undo and removes the directory; a key
whose undo is still pending is refused, never overwritten. `chaoslab export --to chaostoolkit` gives every
fault its own key (`<experiment>-<n>`), and a rollback with the same key.

    {"type": "action", "name": "kill-etcd-leader",
     "provider": {"type": "python", "module": "chaoslab.chaostoolkit.actions", "func": "inject_fault",
                  "arguments": {"kind": "kill-process", "params": {"component": "etcd", "select": "leader"},
                                "target": "lab", "key": "etcd-leader-kill-1"}}}

Annotations are the plain `typing` ones on purpose (no `from __future__ import annotations`): chaoslib's
discovery names argument types from the annotation objects (`Dict` → mapping, `str` → string).
"""

import json
import shutil
import time
from pathlib import Path
from typing import Any, Dict  # noqa: UP035 (see the module docstring)

from chaoslab.errors import ChaoslabError, InjectionError, RevertError
from chaoslab.faults import build
from chaoslab.faults.base import Injection, Undo, apply_undo
from chaoslab.targets import describe, resolve_target

__all__ = ["inject_fault", "kill_process", "network_degrade", "partition", "revert_fault"]

Json = Dict[str, Any]  # noqa: UP006 -- chaoslib's discovery names `typing.Dict` "mapping", `dict[...]` "object"

INJECTION_FORMAT = "chaoslab.io/chaostoolkit-injection/v1"
REVERT_FORMAT = "chaoslab.io/chaostoolkit-revert/v1"


def pending_dir(runs_dir: str, key: str) -> Path:
    """Where the undo of the injection `key` waits until it is reverted."""
    if not key or "/" in key or key.startswith("."):
        raise InjectionError(f"chaostoolkit key {key!r} must be a plain name (letters, digits, -, _)")
    return Path(runs_dir) / f"chaostoolkit-{key}"


def _write(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def revert_pending(pending: Path, target: str | None = None) -> list[dict[str, Any]]:
    """Apply the pending undo in `pending` (if any) and remove the directory; the injections reverted.
    `RevertError` leaves `undo.json` in place for `chaoslab recover`."""
    undo_file = pending / "undo.json"
    if not undo_file.exists():
        return []
    injections = json.loads(undo_file.read_text())
    if target is None:
        info = json.loads((pending / "target.json").read_text())
        tgt = resolve_target(f"lab:{info['name']}", state_root=Path(info["state_root"]))
    else:
        tgt = resolve_target(target)
    errors = []
    for inj in injections:
        for u in inj["undo"]:
            try:
                apply_undo(tgt, Undo.from_json(u))
            except ChaoslabError as exc:
                errors.append(str(exc))
    if errors:
        raise RevertError("; ".join(errors) + f" (pending undo kept in {undo_file})")
    shutil.rmtree(pending)
    return list(injections)


def inject_fault(kind: str, params: Json, target: str = "lab", duration: float = 0.0,
                 key: str = "chaostoolkit", runs_dir: str = "runs") -> Json:
    """Inject one chaoslab fault (`kind` as in an experiment's spec.faults: kill-process, partition,
    network-degrade, drain-node; `params` its parameters, YAML spelling) against `target` (`lab` or
    `lab:NAME`). `duration` (seconds) is how long the fault will hold: network faults arm a dead-man's switch
    that heals them `duration + deadman` seconds later even if nothing reverts them. The undo is written to
    RUNS_DIR/chaostoolkit-KEY/undo.json before injecting; revert it with `revert_fault` and the same `key`.
    Returns the injection (what was hit, its undo, `injectedAt` wall-clock seconds)."""
    pending = pending_dir(runs_dir, key)
    if (pending / "undo.json").exists():
        raise InjectionError(f"chaostoolkit key {key!r}: an earlier injection is still pending in {pending}; "
                             f"revert it first (`chaoslab recover {pending}`)")
    tgt = resolve_target(target)
    fault = build(kind, params, f"chaostoolkit action {kind}", float(duration))
    injection: Injection = fault.resolve(tgt, 0)
    pending.mkdir(parents=True, exist_ok=True)
    _write(pending / "target.json", describe(tgt))
    _write(pending / "undo.json", [injection.to_json()])
    injected_at = time.time()
    try:
        fault.inject(tgt, injection)
    except BaseException:
        revert_pending(pending, target)  # what was done so far, at once; the injection error is the news
        raise
    return {"format": INJECTION_FORMAT, "key": key, "pending": str(pending), "target": target,
            "injectedAt": injected_at, "duration": float(duration), "injection": injection.to_json()}


def revert_fault(target: str = "lab", key: str = "chaostoolkit", runs_dir: str = "runs") -> Json:
    """Rollback: apply the pending undo of the injection `key` (resume a stopped process, heal a partition,
    uncordon nodes) and remove it. Nothing pending (never injected, or reverted already) is not an error.
    Returns what was reverted and `revertedAt` (wall-clock seconds)."""
    pending = pending_dir(runs_dir, key)
    reverted = revert_pending(pending, target)
    return {"format": REVERT_FORMAT, "key": key, "pending": str(pending), "target": target,
            "revertedAt": time.time(), "reverted": reverted}


def kill_process(component: str, select: str = "leader", signal: str = "KILL", count: int = 1,
                 target: str = "lab", duration: float = 0.0, key: str = "chaostoolkit",
                 runs_dir: str = "runs") -> Json:
    """Signal a control-plane component (etcd, kube-apiserver, kube-scheduler, kube-controller-manager):
    its `select` (leader, follower, random, all, host:NAME) with `signal` (KILL, TERM, or STOP, resumed
    by `revert_fault`). `inject_fault` with kind kill-process; same `target`, `duration`, `key`."""
    return inject_fault("kill-process", {"component": component, "select": select, "signal": signal,
                                         "count": count}, target, duration, key, runs_dir)


def partition(shape: str = "isolate", select: str = "leader", traffic: str = "all", minority: int = 0,
              direction: str = "inbound", clients: bool = False, deadman: int = 60, target: str = "lab",
              duration: float = 0.0, key: str = "chaostoolkit", runs_dir: str = "runs") -> Json:
    """Cut the network between control-plane hosts with packet filters: `shape` isolate, split (a
    `minority` of hosts, 0 = the largest) or one-way (`direction` inbound or outbound), the host chosen by
    etcd role (`select`), `traffic` all, peer (TCP 2380) or client (TCP 2379), `clients` also cuts the load
    balancer off. Healed by `revert_fault`, or by the dead-man's switch `duration + deadman` seconds later."""
    params: dict[str, Any] = {"shape": shape, "select": select, "traffic": traffic, "direction": direction,
                              "clients": clients, "deadman": deadman}
    if minority:
        params["minority"] = minority
    return inject_fault("partition", params, target, duration, key, runs_dir)


def network_degrade(select: str = "leader", loss: float = 0.0, delay: str = "0", jitter: str = "0",
                    traffic: str = "all", deadman: int = 60, target: str = "lab", duration: float = 0.0,
                    key: str = "chaostoolkit", runs_dir: str = "runs") -> Json:
    """Make one host's links to its peers lossy (`loss` percent, each way) or slow (`delay`, `jitter`,
    e.g. 1500ms; needs the kernel's netem). Healed by `revert_fault` or the dead-man's switch."""
    return inject_fault("network-degrade", {"select": select, "loss": loss, "delay": delay, "jitter": jitter,
                                            "traffic": traffic, "deadman": deadman},
                        target, duration, key, runs_dir)
