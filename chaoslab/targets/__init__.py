"""How chaoslab reaches a cluster: the `Target` protocol and the way a target is chosen.

A target answers the questions probes and faults ask — where is the API, where are the etcd members,
which process is a component on a host, and send it a signal — so neither probes nor faults know whether
they face the local lab or (later) a kubeconfig, SSH or in-cluster target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from chaoslab.clients.etcd import EtcdMember
from chaoslab.clients.hosts import Command, Endpoint, Wrap
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.spec.checks import add_target_check

COMPONENTS = ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager")


class Target(Protocol):
    name: str
    """Human name used in messages and the run lock, e.g. `lab 'lab'`."""
    renewal_window: float
    """Seconds without an observed Lease renewal after which a scheduler/controller-manager leader counts
    as gone (two missed renewals: 2 × retry period + 1 s)."""

    def api(self) -> KubeApi:
        """A client for the (load-balanced) API."""

    def apiserver_endpoints(self) -> Mapping[str, str]:
        """`lb` and each apiserver host → base URL (https://…)."""

    def etcd_members(self, timeout: float = 1.0) -> dict[str, EtcdMember]:
        """Member name → a client bound to that member only."""

    def hosts(self, component: str) -> list[str]:
        """The hosts that run `component`."""

    def pid(self, component: str, host: str) -> int | None:
        """The process id of a component on a host now, or None if it is not running."""

    def signal(self, component: str, host: str, signal: str) -> int:
        """Send a signal (KILL, TERM, STOP, CONT) to a component on a host; return the pid it went to."""

    def hold(self, component: str, host: str, held: bool) -> None:
        """Keep a component down (held) or let it be restarted again (not held)."""

    def component_log(self, component: str, host: str) -> str:
        """The component's own log on the host as text (etcd's zap JSON, klog for the others), at least
        back to the start of the current run; for the ground truth of a run (`chaoslab.probes.records`).
        `TargetError` when the target cannot read it ("not supported by …")."""

    def endpoint(self, host: str) -> Endpoint:
        """The host as its peers reach it on the network (for partitions)."""

    def clients(self, host: str) -> Endpoint:
        """Where clients from outside the control plane — load balancers, users, chaoslab's own probes —
        reach `host` from, as the host's packet filter sees them (`managed=False`: no rules go there). The
        lab: its load balancer's source address inside the host's namespace. A real host: the load
        balancer's or the client network's address."""

    def host_wrap(self, host: str) -> Wrap:
        """How a command line runs on `host` (in its namespace, over SSH, in a privileged pod)."""

    def python(self, host: str) -> tuple[str, ...]:
        """The command line that runs chaoslab's Python on `host` (before `host_wrap`), for helpers such as
        `python -m chaoslab.faults.delayer`. The lab: this very interpreter, since its hosts share the machine."""

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        """Run already-wrapped commands in order, from where this target controls its hosts; return each
        one's standard output. `TargetError` on a failure, unless the command `may_fail`."""

    def stop_heartbeat(self, node: str, stopped: bool) -> None:
        """Stop (or, `stopped=False`, restore) the heartbeat of worker node `node`: its kubelet stops
        renewing its Lease and posting status, as when it dies or becomes unreachable. Idempotent. Targets
        that cannot do this raise `TargetError` saying so ("not supported by …")."""

    @property
    def lock_path(self) -> Path:
        """A file whose lock marks the one run allowed against this target at a time."""



def _ssh_problems(target: Mapping[str, object]) -> list[tuple[tuple[str | int, ...], str]]:
    from chaoslab.targets.ssh import config_problems  # deferred: only ssh experiments need it

    return list(config_problems(target))


add_target_check("ssh", _ssh_problems)

TARGET_PARAMS = {"lab": {"name", "state_root"}, "kubeconfig": {"context", "kubeconfig", "inCluster", "etcd", "helperPod"}}


def resolve_target(cli: str | None, spec_kind: str | None = None, spec_params: Mapping[str, object] | None = None,
                   state_root: Path | None = None) -> Target:
    """The target named on the command line (`lab`, `lab:NAME`, `kubeconfig`, `kubeconfig:CONTEXT` or
    `in-cluster`), else by the experiment, else the running lab. Never a guess at the current kubeconfig
    context: a kubeconfig target is always asked for by name. The command line picks the cluster; settings
    only the experiment can carry (`etcd` access, a `kubeconfig` path) still come from spec.target when it
    names the same kind."""
    from chaoslab.errors import SpecError
    from chaoslab.targets.lab import LabTarget  # the only place the core reaches for the lab adapter

    params: dict[str, object] = {}
    if cli:
        kind, _, name = cli.partition(":")
        if kind == "in-cluster":
            kind, params = "kubeconfig", {"inCluster": True}
        if kind == spec_kind and kind != "lab":
            params = {**dict(spec_params or {}), **params}
        if name:
            params["name" if kind == "lab" else "context"] = name
    else:
        kind, params = spec_kind or "lab", dict(spec_params or {})
    if kind == "ssh" and not cli:
        from chaoslab.targets.ssh import SshTarget

        return SshTarget.from_params(params)  # checks its own settings, field by field
    if kind not in TARGET_PARAMS:
        raise SpecError([(f"target kind {kind!r} is not supported; use lab[:NAME], kubeconfig[:CONTEXT] or "
                         f"in-cluster on the command line, or describe an ssh target in spec.target")])
    unknown = sorted(set(params) - TARGET_PARAMS[kind])
    if unknown:
        raise SpecError([(f"spec.target: unknown field(s) {', '.join(unknown)} for kind {kind}; known: "
                         f"{', '.join(sorted(TARGET_PARAMS[kind]))}")])
    if kind == "kubeconfig":
        from chaoslab.targets.kubeconfig import KubeconfigTarget

        return KubeconfigTarget.load(str(params["context"]) if params.get("context") else None,
                                     str(params["kubeconfig"]) if params.get("kubeconfig") else None,
                                     in_cluster=bool(params.get("inCluster")), etcd=params.get("etcd"),
                                     helper_pod=params.get("helperPod"))
    root = state_root or (Path(str(params["state_root"])) if params.get("state_root") else None)
    return LabTarget.running(str(params.get("name") or "lab"), root)


def close_target(target: Target) -> None:
    """Let go of what a target holds open between commands (the ssh target's shared connections); a no-op
    for targets that hold nothing."""
    close = getattr(target, "close", None)
    if callable(close):
        close()


def describe(target: Target) -> dict[str, object]:
    """Enough to reach the same target again (written to the run directory for `chaoslab recover`):
    names and paths only, never credentials."""
    layout = getattr(target, "layout", None)
    if layout is not None:
        return {"kind": "lab", "name": layout.config.name, "state_root": str(layout.config.state_root),
                "renewal_window": target.renewal_window}
    own = getattr(target, "describe", None)
    if callable(own):
        return dict(own())
    settings = getattr(target, "settings", None)
    if settings is not None and hasattr(settings, "raw"):
        # Paths and addresses only: an ssh target's settings hold no secret, only where the key file is.
        return {"kind": "ssh", "name": target.name, "params": dict(settings.raw),
                "renewal_window": target.renewal_window}
    return {"kind": "unknown", "name": target.name, "renewal_window": target.renewal_window}


def target_from_description(info: Mapping[str, object]) -> Target:
    """The target a run directory's target.json describes (for `chaoslab recover`)."""
    if info.get("kind") == "ssh":
        params = info.get("params")
        return resolve_target(None, "ssh", params if isinstance(params, Mapping) else {})
    if info.get("kind") == "kubeconfig":
        params = {k: info[k] for k in ("context", "kubeconfig", "inCluster", "etcd", "helperPod") if info.get(k) is not None}
        if params.get("inCluster"):
            params.pop("context", None)
        return resolve_target(None, "kubeconfig", params)
    return resolve_target(f"lab:{info['name']}", state_root=Path(str(info["state_root"])))
