"""Chaos Toolkit actions (python provider, module `chaoslab.chaostoolkit.actions`): inject one chaoslab
fault, and revert it as a rollback. `chaos discover chaoslab` lists every function in `__all__`.

Each call is a chaoslab run of one fault: it makes a plan (the same guard rails as `chaoslab run`: a
cluster that is not the lab needs the allow-list or `yes: true`, the blast radius, target capabilities) and
hands it to the executor's inject and revert, so the undo is on disk before the cluster is touched: each injection gets a pending
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

import shutil
import time
from pathlib import Path
from typing import Any, Dict, List  # noqa: UP035 (see the module docstring)

from chaoslab.errors import InjectionError
from chaoslab.execute.executor import bind, inject, revert, revert_pending
from chaoslab.execute.rundir import RunDir
from chaoslab.faults.base import Injection, ignore_events
from chaoslab.plan.guard import load_settings
from chaoslab.plan.planner import make_plan
from chaoslab.spec.model import Experiment, FaultSpec
from chaoslab.targets import Target, resolve_target, target_from_description

__all__ = ["inject_fault", "kill_process", "network_degrade", "partition", "revert_fault"]

Json = Dict[str, Any]  # noqa: UP006 -- chaoslib's discovery names `typing.Dict` "mapping", `dict[...]` "object"

INJECTION_FORMAT = "chaoslab.io/chaostoolkit-injection/v1"
REVERT_FORMAT = "chaoslab.io/chaostoolkit-revert/v1"


def consent(yes: object) -> bool:
    """`yes` as Chaos Toolkit passes it: a boolean, or a string from `--var chaoslab_yes=true`."""
    return yes is True or (isinstance(yes, str) and yes.strip().lower() in ("true", "yes", "1", "on"))


def pending_dir(runs_dir: str, key: str) -> Path:
    """Where the undo of the injection `key` waits until it is reverted."""
    if not key or "/" in key or key.startswith("."):
        raise InjectionError(f"chaostoolkit key {key!r} must be a plain name (letters, digits, -, _)")
    return Path(runs_dir) / f"chaostoolkit-{key}"


def revert_pending_dir(pending: Path, target: str | None = None) -> List[Json]:  # noqa: UP006
    """Apply the pending undo in `pending` (if any) and remove the directory; the injections reverted.
    `RevertError` leaves `undo.json` in place for `chaoslab recover`."""
    run_dir = RunDir(pending)
    injections = run_dir.pending()
    if not injections:
        return []
    tgt: Target = target_from_description(run_dir.target()) if target is None else resolve_target(target)
    try:
        revert_pending(tgt, run_dir)
    finally:
        tgt.close()
    shutil.rmtree(pending)
    return injections


def inject_fault(kind: str, params: Json, target: str = "lab", duration: float = 0.0,
                 key: str = "chaostoolkit", runs_dir: str = "runs", yes: bool = False) -> Json:
    """Inject one chaoslab fault (`kind` as in an experiment's spec.faults: kill-process, partition,
    network-degrade, drain-node; `params` its parameters, YAML spelling) against `target` (`lab`, `lab:NAME`,
    `kubeconfig:CONTEXT` or `in-cluster`). A target that is not the lab needs the allow-list in chaoslab's
    config file or `yes` (true), as `chaoslab run --yes`. `duration` (seconds) is how long the fault will
    hold: network faults arm a dead-man's switch that heals them `duration + deadman` seconds later even if
    nothing reverts them. The undo is written to RUNS_DIR/chaostoolkit-KEY/undo.json before injecting;
    revert it with `revert_fault` and the same `key`. Returns the injection (what was hit, its undo,
    `injectedAt` wall-clock seconds)."""
    pending = RunDir(pending_dir(runs_dir, key))
    if pending.has_pending:
        raise InjectionError(f"chaostoolkit key {key!r}: an earlier injection is still pending in {pending.path}; "
                             f"revert it first (`chaoslab recover {pending.path}`)")
    tgt = resolve_target(target)
    try:
        experiment = Experiment(key, (FaultSpec(kind, dict(params), f"chaostoolkit action {kind}"),),
                                float(duration), steady_state=(), probes=())
        plan = make_plan(experiment, tgt, [], settings=load_settings(), yes=consent(yes))
        plan.refuse()
        bound = bind(plan, tgt)
        pending.path.mkdir(parents=True, exist_ok=True)
        pending.write_target(tgt.describe())
        injected: list[Injection] = []
        injected_at = time.time()
        try:
            inject(plan, tgt, bound, pending, ignore_events, injected)
        except BaseException:
            revert(tgt, injected, pending, ignore_events)  # what was done so far, at once; the error is the news
            raise
    finally:
        tgt.close()
    return {"format": INJECTION_FORMAT, "key": key, "pending": str(pending.path), "target": target,
            "injectedAt": injected_at, "duration": float(duration), "injection": bound[0].to_json()}


def revert_fault(target: str = "lab", key: str = "chaostoolkit", runs_dir: str = "runs") -> Json:
    """Rollback: apply the pending undo of the injection `key` (resume a stopped process, heal a partition,
    uncordon nodes) and remove it. Nothing pending (never injected, or reverted already) is not an error.
    Returns what was reverted and `revertedAt` (wall-clock seconds)."""
    pending = pending_dir(runs_dir, key)
    reverted = revert_pending_dir(pending, target)
    return {"format": REVERT_FORMAT, "key": key, "pending": str(pending), "target": target,
            "revertedAt": time.time(), "reverted": reverted}


def kill_process(component: str, select: str = "leader", signal: str = "KILL", count: int = 1,
                 target: str = "lab", duration: float = 0.0, key: str = "chaostoolkit",
                 runs_dir: str = "runs", yes: bool = False) -> Json:
    """Signal a control-plane component (etcd, kube-apiserver, kube-scheduler, kube-controller-manager):
    its `select` (leader, follower, random, all, host:NAME) with `signal` (KILL, TERM, or STOP, resumed
    by `revert_fault`). `inject_fault` with kind kill-process; same `target`, `duration`, `key`."""
    return inject_fault("kill-process", {"component": component, "select": select, "signal": signal,
                                         "count": count}, target, duration, key, runs_dir, yes)


def partition(shape: str = "isolate", select: str = "leader", traffic: str = "all", minority: int = 0,
              direction: str = "inbound", clients: bool = False, deadman: int = 60, target: str = "lab",
              duration: float = 0.0, key: str = "chaostoolkit", runs_dir: str = "runs", yes: bool = False) -> Json:
    """Cut the network between control-plane hosts with packet filters: `shape` isolate, split (a
    `minority` of hosts, 0 = the largest) or one-way (`direction` inbound or outbound), the host chosen by
    etcd role (`select`), `traffic` all, peer (TCP 2380) or client (TCP 2379), `clients` also cuts the load
    balancer off. Healed by `revert_fault`, or by the dead-man's switch `duration + deadman` seconds later."""
    params: dict[str, Any] = {"shape": shape, "select": select, "traffic": traffic, "direction": direction,
                              "clients": clients, "deadman": deadman}
    if minority:
        params["minority"] = minority
    return inject_fault("partition", params, target, duration, key, runs_dir, yes)


def network_degrade(select: str = "leader", loss: float = 0.0, delay: str = "0", jitter: str = "0",
                    traffic: str = "all", deadman: int = 60, target: str = "lab", duration: float = 0.0,
                    key: str = "chaostoolkit", runs_dir: str = "runs", yes: bool = False) -> Json:
    """Make one host's links to its peers lossy (`loss` percent, each way) or slow (`delay`, `jitter`,
    e.g. 1500ms; needs the kernel's netem). Healed by `revert_fault` or the dead-man's switch."""
    return inject_fault("network-degrade", {"select": select, "loss": loss, "delay": delay, "jitter": jitter,
                                            "traffic": traffic, "deadman": deadman},
                        target, duration, key, runs_dir, yes)
