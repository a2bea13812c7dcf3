"""How chaoslab reaches a cluster: the `Target` protocol and the way a target is chosen.

A target answers the questions probes and faults ask — where is the API, where are the etcd members,
which process is a component on a host, and send it a signal — so neither probes nor faults know whether
they face the local lab or (later) a kubeconfig, SSH or in-cluster target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chaoslab.clients.etcd import EtcdMember
from chaoslab.clients.hosts import Command, Endpoint, Wrap
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import SpecError, TargetError
from chaoslab.registry import Registry
from chaoslab.spec.checks import add_target_check
from chaoslab.targets.helperpod import HelperPods

COMPONENTS = ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager")


@dataclass(frozen=True)
class CertificateLink:
    """One link's leaf certificate as a target keeps it (for `cert-expiry`): its files, the CA that signs
    it, and the processes that present it."""

    link: str
    """The link's name, e.g. `scheduler-client` (kube-scheduler → apiserver)."""
    cert: Path
    key: Path
    ca_cert: Path
    ca_key: Path
    users: tuple[tuple[str, str], ...]
    """(component, host) of every process that presents the certificate."""


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

    def machine_wrap(self, host: str) -> Wrap:
        """How a command line runs on `host`'s machine outside any network namespace the target made, for
        what a network namespace hides (`ip netns exec` remounts /sys: the cgroup hierarchy is not there).
        The lab: as is, on this machine (its hosts share it); over ssh: as `host_wrap`."""

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

    def service_host(self) -> tuple[Wrap, str]:
        """Where chaoslab runs a server that every apiserver must reach (a `webhook-outage` webhook): how a
        command line runs there, and the IPv4 address it listens on. The lab: the lab network's switch
        namespace, on the bridge's service address. Targets that cannot host one raise `TargetError`
        saying so ("not supported by …")."""

    def certificate(self, link: str) -> CertificateLink:
        """The files of one link's leaf certificate and who presents it (`cert-expiry`). Targets that do not
        hold the CA's key raise `TargetError` saying so ("not supported by …"); an unknown link raises
        `TargetError` naming the known ones."""

    @property
    def lock_path(self) -> Path:
        """A file whose lock marks the one run allowed against this target at a time."""

    # ---- capabilities: what the target can do, declared (callers never probe for attributes) ----------
    is_lab: bool
    """The local lab: chaoslab may always act on it (no allow-list, no --yes)."""
    remote_switch: bool
    """Network faults arm their dead-man's switch on each host (ssh), not on chaoslab's machine."""

    @property
    def allow_names(self) -> Mapping[str, Sequence[str]]:
        """What an allow-list may name to let chaoslab act on this cluster: `contexts` and `hosts`."""

    def provider(self) -> str | None:
        """EKS, GKE or AKS when the control plane is managed; None otherwise."""

    def node_level_refusal(self, kind: str) -> str | None:
        """Why the node-level fault `kind` cannot run here, and what to do instead; None when it can."""

    def etcd_refusal(self) -> str | None:
        """Why etcd cannot be reached (so no etcd probes); None when it can."""

    def helper_pods(self) -> HelperPods | None:
        """The helper-pod runner when node-level faults run through privileged pods (and webhook-outage's server
        as an unprivileged pod behind a Service); None otherwise."""

    def node_of(self, host: str) -> str:
        """The Node that `host` is (for helper pods pinned to it); `TargetError` where hosts are not Nodes."""

    def describe(self) -> dict[str, object]:
        """Enough to reach the same target again (run directory, `chaoslab recover`): names and paths only,
        never credentials. Has `kind`, `name` and `renewal_window`."""

    def close(self) -> None:
        """Let go of what the target holds open between commands (shared ssh connections)."""


class TargetBase:
    """The answers of a target that is not the lab and can do what it is asked: every concrete target
    derives from it and overrides what differs."""

    kind: str = ""
    """The kind as `spec.target.kind` and the command line spell it."""
    cli_name: str | None = None
    """The parameter `--target KIND:NAME` sets (None: not named on the command line)."""
    is_lab = False
    remote_switch = False

    @property
    def allow_names(self) -> Mapping[str, Sequence[str]]:
        return {"contexts": [], "hosts": []}

    def provider(self) -> str | None:
        return None

    def node_level_refusal(self, kind: str) -> str | None:
        return None

    def etcd_refusal(self) -> str | None:
        return None

    def helper_pods(self) -> HelperPods | None:
        return None

    def machine_wrap(self, host: str) -> Wrap:
        return self.host_wrap(host)  # type: ignore[attr-defined,no-any-return]  # every target has host_wrap

    def node_of(self, host: str) -> str:
        raise TargetError(f"{getattr(self, 'name', 'this target')} runs helper pods but cannot map hosts to nodes")

    def close(self) -> None:
        return None



def _ssh_problems(target: Mapping[str, object]) -> list[tuple[tuple[str | int, ...], str]]:
    from chaoslab.targets.ssh import config_problems  # deferred: only ssh experiments need it

    return list(config_problems(target))


add_target_check("ssh", _ssh_problems)

def contract_problems(cls: type[Any]) -> list[str]:
    """What a target class lacks: it derives from `TargetBase` (the capability answers), says which
    parameter the command line's `KIND:NAME` sets (`cli_name`, or None), and builds itself from its
    parameters (`from_params`, which refuses unknown ones)."""
    problems = []
    if not (isinstance(cls, type) and issubclass(cls, TargetBase)):
        problems.append("must derive from chaoslab.targets.TargetBase")
    if not callable(getattr(cls, "from_params", None)):
        problems.append("has no from_params(params) classmethod")
    if not isinstance(getattr(cls, "cli_name", None), str | type(None)):
        problems.append("cli_name must be the parameter `KIND:NAME` sets, or None")
    return problems


TARGETS: Registry[type[Any]] = Registry("target", "chaoslab.targets", contract_problems)


def _builtins() -> Registry[type[Any]]:
    if not TARGETS:
        from chaoslab.targets.kubeconfig import KubeconfigTarget
        from chaoslab.targets.lab import LabTarget  # the only place the core reaches for the lab adapter
        from chaoslab.targets.ssh import SshTarget

        for cls in (LabTarget, KubeconfigTarget, SshTarget):
            TARGETS.register(cls)
    return TARGETS


def unknown_params(kind: str, params: Mapping[str, object], known: Iterable[str]) -> None:
    """`SpecError` naming the parameters of `spec.target` that a target of `kind` does not take."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise SpecError([(f"spec.target: unknown field(s) {', '.join(unknown)} for kind {kind}; known: "
                         f"{', '.join(sorted(known))}")])


def resolve_target(cli: str | None, spec_kind: str | None = None, spec_params: Mapping[str, object] | None = None,
                   state_root: Path | None = None) -> Target:
    """The target named on the command line (`lab`, `lab:NAME`, `kubeconfig`, `kubeconfig:CONTEXT` or
    `in-cluster`), else by the experiment, else the running lab. Never a guess at the current kubeconfig
    context: a kubeconfig target is always asked for by name. The command line picks the cluster; settings
    only the experiment can carry (`etcd` access, a `kubeconfig` path) still come from spec.target when it
    names the same kind."""
    registry = _builtins()
    params: dict[str, object] = {}
    if cli:
        kind, _, name = cli.partition(":")
        if kind == "in-cluster":
            kind, params = "kubeconfig", {"inCluster": True}
        cls = registry.get(kind)
        if cls is None or cls.cli_name is None:
            raise SpecError([(f"target kind {kind!r} is not supported on the command line; use lab[:NAME], "
                             f"kubeconfig[:CONTEXT] or in-cluster, or describe an ssh target in spec.target")])
        if kind == spec_kind and not cls.is_lab:
            params = {**dict(spec_params or {}), **params}
        if name:
            params[cls.cli_name] = name
    else:
        kind, params = spec_kind or "lab", dict(spec_params or {})
    if state_root is not None:
        params["state_root"] = str(state_root)
    try:
        cls = registry.get_kind(kind)
    except SpecError:
        raise SpecError([(f"target kind {kind!r} is not supported; use lab[:NAME], kubeconfig[:CONTEXT] or "
                         f"in-cluster on the command line, or describe an ssh target in spec.target")]) from None
    target: Target = cls.from_params(params)
    return target


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
