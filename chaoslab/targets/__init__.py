"""How chaoslab reaches a cluster: the `Target` protocol and the way a target is chosen.

A target answers the questions probes and faults ask — where is the API, where are the etcd members,
which process is a component on a host, and send it a signal — so neither probes nor faults know whether
they face the local lab or (later) a kubeconfig, SSH or in-cluster target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from chaoslab.etcd import EtcdMember
from chaoslab.kubeapi import KubeApi
from chaoslab.netrules import Command, Endpoint, Wrap

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
        `python -m chaoslab.delayer`. The lab: this very interpreter, since its hosts share the machine."""

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        """Run already-wrapped commands in order, from where this target controls its hosts; return each
        one's standard output. `TargetError` on a failure, unless the command `may_fail`."""

    @property
    def lock_path(self) -> Path:
        """A file whose lock marks the one run allowed against this target at a time."""


def resolve_target(cli: str | None, spec_kind: str | None = None, spec_params: Mapping[str, object] | None = None,
                   state_root: Path | None = None) -> Target:
    """The target named on the command line (`lab` or `lab:NAME`), else by the experiment, else the running
    lab. Never a guess at the current kubeconfig context."""
    from chaoslab.errors import SpecError
    from chaoslab.targets.lab import LabTarget  # the only place the core reaches for the lab adapter

    if cli:
        kind, _, name = cli.partition(":")
        params: Mapping[str, object] = {"name": name} if name else {}
    else:
        kind, params = spec_kind or "lab", spec_params or {}
    if kind != "lab":
        raise SpecError([f"target kind {kind!r} is not supported yet; use `lab` or `lab:NAME`"])
    return LabTarget.running(str(params.get("name") or "lab"), state_root)


def describe(target: Target) -> dict[str, object]:
    """Enough to reach the same target again (written to the run directory for `chaoslab recover`)."""
    layout = getattr(target, "layout", None)
    if layout is not None:
        return {"kind": "lab", "name": layout.config.name, "state_root": str(layout.config.state_root),
                "renewal_window": target.renewal_window}
    return {"kind": "unknown", "name": target.name, "renewal_window": target.renewal_window}
