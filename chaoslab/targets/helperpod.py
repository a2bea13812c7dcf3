"""The privileged helper pod: how a node-level fault would run on a control-plane node through the API
alone (a kubeconfig target with no SSH). Generated and validated, not run yet: `chaoslab run --dry-run`
shows it, and the integration tests have the real apiserver validate it (server-side dry run).

The pod is pinned to the node (`nodeName`, so no scheduler is involved — it may be the fault's victim),
tolerates the control-plane taints, shares the host's PID and network namespaces and is privileged, so
`kill`, `iptables` and `tc` act on the host. Its own command applies the fault, sleeps for the fault's
duration and runs the undo — also on SIGTERM (chaoslab deleting it at revert, or `activeDeadlineSeconds`
running out) — so the fault reverts itself even when chaoslab is gone.

Commands come from chaoslab's own rules (`chaoslab.netrules`, signals by process name) and are quoted
one argument at a time with `shlex.quote`: no user text becomes shell syntax.

Which node: a Lease holder identity is `<hostname>_<uuid>` and kubeadm names etcd members after their
node, but a node's name may be its FQDN while the hostname is short. `node_for_host` maps explicitly:
node name, then the `kubernetes.io/hostname` label, then the node name's first DNS label; anything else —
no match, or two nodes matching — is an error, never a guess.

    >>> pod = helper_pod("chaoslab-kill-0", "cp-1", [("kill", "-STOP", "1234")], [("kill", "-CONT", "1234")],
    ...                  duration=30)
    >>> pod["spec"]["nodeName"], pod["spec"]["hostPID"]
    ('cp-1', True)
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslab.errors import TargetError
from chaoslab.leaders import holder_host

DEFAULT_IMAGE = "nicolaka/netshoot:v0.13"
"""A public image with iptables, tc (iproute2) and procps (pkill, pgrep)."""
CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")
LABEL = "chaoslab.io/helper"


@dataclass(frozen=True)
class HelperPodSettings:
    image: str = DEFAULT_IMAGE
    """Container image with sh, iptables, tc and procps (default nicolaka/netshoot)."""
    namespace: str = "chaoslab"
    """Where helper pods are created (default chaoslab; kube-system needs no extra PodSecurity label)."""
    margin: int = 60
    """Seconds after the fault's duration at which the kubelet ends the pod anyway (its undo runs then)."""


def script(commands: Sequence[Sequence[str]], undo: Sequence[Sequence[str]], duration: float) -> str:
    """The pod's shell program: undo on TERM/INT, apply, hold `duration` seconds, undo, exit.

    A failed undo step does not stop the others (each is tried; the exit status says whether all worked).
    """
    def lines(argvs: Sequence[Sequence[str]]) -> str:
        return "\n".join(f"  {shlex.join(a)} || rc=1" for a in argvs) or "  :"

    return (
        "rc=0\n"
        "undone=0\n"
        f"undo() {{\n  [ \"$undone\" = 1 ] && return\n  undone=1\n{lines(undo)}\n}}\n"
        "p=\n"
        # The sleep goes too: a deleted pod leaves no process behind.
        "trap '[ -n \"$p\" ] && kill $p 2>/dev/null; undo; exit $rc' TERM INT\n"
        f"apply() {{\n{lines(commands)}\n}}\n"
        "apply || true\n"
        f"sleep {max(0, int(duration))} &\n"
        "p=$!\n"
        "wait $p\n"
        "undo\n"
        "exit $rc\n")


def helper_pod(name: str, node: str, commands: Sequence[Sequence[str]], undo: Sequence[Sequence[str]],
               duration: float, settings: HelperPodSettings | None = None) -> dict[str, Any]:
    """The Pod manifest that runs `commands` on `node` for `duration` seconds, then `undo`."""
    settings = settings or HelperPodSettings()
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": {LABEL: "fault"}},
        "spec": {
            "nodeName": node,
            "hostPID": True,
            "hostNetwork": True,
            "restartPolicy": "Never",
            # Ends the pod (TERM, so the trap undoes) if chaoslab never comes back to delete it.
            "activeDeadlineSeconds": int(duration) + settings.margin,
            "terminationGracePeriodSeconds": 30,
            "automountServiceAccountToken": False,
            "priorityClassName": "system-node-critical",
            "tolerations": [{"key": t, "operator": "Exists", "effect": "NoSchedule"} for t in CONTROL_PLANE_TAINTS]
                           + [{"operator": "Exists", "effect": "NoExecute"}],
            "containers": [{
                "name": "fault",
                "image": settings.image,
                "command": ["/bin/sh", "-c", script(commands, undo, duration)],
                "securityContext": {"privileged": True},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "200m", "memory": "64Mi"}},
            }],
        },
    }


def node_for_host(host: str, nodes: Sequence[Mapping[str, Any]]) -> str:
    """The name of the one node that `host` (a hostname or etcd member name) is; `TargetError` otherwise."""
    def name(n: Mapping[str, Any]) -> str:
        return str(n["metadata"]["name"])

    def label(n: Mapping[str, Any]) -> str:
        return str((n["metadata"].get("labels") or {}).get("kubernetes.io/hostname", ""))

    short = host.split(".", 1)[0]
    for found in (sorted({name(n) for n in nodes if name(n) == host}),
                  sorted({name(n) for n in nodes if label(n) == host}),
                  sorted({name(n) for n in nodes if name(n).split(".", 1)[0] == short})):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise TargetError(f"host {host!r} matches several nodes ({', '.join(found)}); name the node with "
                              f"select: host:NODE")
    raise TargetError(f"no node is host {host!r} (by name, kubernetes.io/hostname label or short name); nodes: "
                      f"{', '.join(sorted(name(n) for n in nodes)) or 'none'}")


def node_for_holder(identity: str, nodes: Sequence[Mapping[str, Any]]) -> str:
    """The node of a leader-election Lease holder (`hostname_uuid`)."""
    host = holder_host(identity)
    if not host:
        raise TargetError(f"Lease holder identity {identity!r} names no host")
    return node_for_host(host, nodes)


def node_for_member(member: str, nodes: Sequence[Mapping[str, Any]]) -> str:
    """The node of an etcd member (kubeadm names each member after its node)."""
    return node_for_host(member, nodes)


def kill_commands(process: str, signal: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(apply, undo) argv for signalling the oldest process named `process` on the host (hostPID)."""
    apply = ("pkill", f"-{signal}", "-o", "-x", process)
    undo = (("pkill", "-CONT", "-x", process),) if signal == "STOP" else ()
    return apply, undo
