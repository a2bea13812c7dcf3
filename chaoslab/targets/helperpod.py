"""The privileged helper pod: how a node-level fault runs on a control-plane node through the API alone
(a kubeconfig target with no SSH). Opt-in (`spec.target.helperPod: {image, namespace}`), because it needs
the right to create privileged pods; without it the kubeconfig target refuses node-level faults and
`chaoslab run --dry-run` only shows the pod it would create.

The pod is pinned to the node (`nodeName`, so no scheduler is involved — it may be the fault's victim),
tolerates the control-plane taints, shares the host's PID and network namespaces and is privileged, so
`kill`, `iptables` and `tc` act on the host. Its own command applies the fault, sleeps for the fault's
duration and runs the undo — also on SIGTERM (chaoslab deleting it at revert, or `activeDeadlineSeconds`
running out) — so the fault reverts itself even when chaoslab is gone.

Commands come from chaoslab's own rules (`chaoslab.faults.netrules`, signals by process name) and are quoted
one argument at a time with `shlex.quote`: no user text becomes shell syntax. A command's stdin (an
`iptables-restore` transaction) is piped in by `printf`, each line quoted the same way (`Command.shell`).

Which node: a Lease holder identity is `<hostname>_<uuid>` and kubeadm names etcd members after their
node, but a node's name may be its FQDN while the hostname is short. `node_for_host` maps explicitly:
node name, then the `kubernetes.io/hostname` label, then the node name's first DNS label; anything else —
no match, or two nodes matching — is an error, never a guess.

`HelperPods` creates the pod, follows its log for the script's `chaoslab:` marker lines (what was
signalled, the old and new pid) and deletes it; `kill-process` records those lines on the timeline. The
undo written before injection is `delete-pod` (namespace, name), so `chaoslab recover` deletes it too.

    >>> pod = helper_pod("chaoslab-kill-0", "cp-1", [Command(("kill", "-STOP", "1234"))],
    ...                  [Command(("kill", "-CONT", "1234"))], duration=30)
    >>> pod["spec"]["nodeName"], pod["spec"]["hostPID"]
    ('cp-1', True)
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslab.clients.hosts import Command
from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.clients.leaders import holder_host
from chaoslab.errors import InjectionError, SpecError, TargetError

DEFAULT_IMAGE = "nicolaka/netshoot:v0.13"
"""A public image with iptables, tc (iproute2) and procps (pkill, pgrep)."""
DEFAULT_PYTHON_IMAGE = "python:3.12-alpine"
"""A public image with Python 3 (`webhook-outage`'s server; only the standard library)."""
CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")
LABEL = "chaoslab.io/helper"
MARK = "chaoslab:"
"""Prefix of the lines the helper's script writes to its log for chaoslab to read."""
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$")


@dataclass(frozen=True)
class HelperPodSettings:
    image: str = DEFAULT_IMAGE
    """Container image with sh, iptables, tc and procps (default nicolaka/netshoot)."""
    namespace: str = "chaoslab"
    """Where helper pods are created (default chaoslab; kube-system needs no extra PodSecurity label)."""
    margin: int = 60
    """Seconds after the fault's duration at which the kubelet ends the pod anyway (its undo runs then)."""
    start_timeout: float = 120.0
    """Seconds a helper pod may take to be scheduled, pull its image and apply the fault (default 120)."""
    interface: str | None = None
    """The nodes' interface toward their peers (e.g. eth0), for the delay of network-degrade (netem);
    default: none, and delays are refused (loss needs no interface)."""
    python_image: str = DEFAULT_PYTHON_IMAGE
    """Image with Python 3.9 or newer for webhook-outage's server pod (`pythonImage`; default
    python:3.12-alpine)."""

    @classmethod
    def from_params(cls, raw: object, where: str = "spec.target.helperPod") -> HelperPodSettings | None:
        """From `spec.target.helperPod` ({image, namespace, startTimeout}); None when not given (node-level
        faults are then refused). `true` takes the defaults."""
        if raw is None or raw is False:
            return None
        if raw is True:
            return cls()
        if not isinstance(raw, Mapping):
            raise SpecError([f"{where}: give true or a mapping {{image, namespace, startTimeout}}"])
        known = ("image", "interface", "namespace", "pythonImage", "startTimeout")
        problems = [f"{where}.{k}: unknown field; known: {', '.join(known)}" for k in sorted(set(raw) - set(known))]
        image, namespace = raw.get("image", DEFAULT_IMAGE), raw.get("namespace", "chaoslab")
        python_image = raw.get("pythonImage", DEFAULT_PYTHON_IMAGE)
        timeout, interface = raw.get("startTimeout", 120), raw.get("interface")
        if interface is not None and (not isinstance(interface, str) or not _IFNAME.match(interface)):
            problems.append(f"{where}.interface: {interface!r} is not an interface name")
        for key, value in (("image", image), ("pythonImage", python_image)):
            if not isinstance(value, str) or not _IMAGE.match(value):
                problems.append(f"{where}.{key}: {value!r} is not an image reference")
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            problems.append(f"{where}.namespace: {namespace!r} is not a namespace name")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            problems.append(f"{where}.startTimeout: {timeout!r} is not a number of seconds (above 0, at most 3600)")
        if problems:
            raise SpecError(problems)
        return cls(image=str(image), namespace=str(namespace), start_timeout=float(timeout),
                   interface=interface, python_image=str(python_image))

    def describe(self) -> dict[str, object]:
        return {"image": self.image, "namespace": self.namespace, "startTimeout": self.start_timeout,
                **({"interface": self.interface} if self.interface else {}),
                **({"pythonImage": self.python_image} if self.python_image != DEFAULT_PYTHON_IMAGE else {})}


def script(commands: Sequence[Command], undo: Sequence[Command], duration: float) -> str:
    """The pod's shell program: undo on TERM/INT, apply, hold `duration` seconds, undo, exit.

    A failed undo step does not stop the others (each is tried; the exit status says whether all worked).
    """
    def lines(cmds: Sequence[Command]) -> str:
        return "\n".join(f"  {c.shell()} || rc=1" for c in cmds) or "  :"

    return (
        "rc=0\n"
        "undone=0\n"
        f"undo() {{\n  [ \"$undone\" = 1 ] && return\n  undone=1\n{lines(undo)}\n}}\n"
        "p=\n"
        # The sleep goes too: a deleted pod leaves no process behind.
        # pkill -P: a TERM between `sleep &` and `p=$!` finds $p empty; the children go all the same.
        f"trap '[ -n \"$p\" ] && kill $p 2>/dev/null; pkill -P $$ 2>/dev/null; undo; "
        f"echo \"{MARK} undone rc=$rc on TERM\"; exit $rc' TERM INT\n"
        f"apply() {{\n{lines(commands)}\n}}\n"
        "apply || true\n"
        f"echo \"{MARK} applied rc=$rc\"\n"
        f"sleep {max(0, int(duration))} &\n"
        "p=$!\n"
        "wait $p\n"
        "undo\n"
        f"echo \"{MARK} undone rc=$rc\"\n"
        "exit $rc\n")


def helper_pod(name: str, node: str, commands: Sequence[Command], undo: Sequence[Command],
               duration: float, settings: HelperPodSettings | None = None) -> dict[str, Any]:
    """The Pod manifest that runs `commands` on `node` for `duration` seconds, then `undo`."""
    return pod_manifest(name, node, script(commands, undo, duration), duration, settings)


def pod_manifest(name: str, node: str, program: str, duration: float,
                 settings: HelperPodSettings | None = None) -> dict[str, Any]:
    """The Pod manifest that runs the shell `program` (from `script` or `kill_script`) on `node`."""
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
                "command": ["/bin/sh", "-c", program],
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



PROCESS_PATTERNS = {c: f"^([^ ]*/)?{c}( |$)" for c in
                    ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager")}
"""`pgrep -f` patterns for each component (the program first, with or without a directory; anchored, so
the helper's own `/bin/sh -c …` never matches). `pkill -x NAME` would not do: process names stop at 15
characters, and kube-controller-manager has 23."""

# Fixed shell function: the pattern is a quoted assignment, never spliced into other syntax. Keeps the
# processes in the script's own network namespace: on a node that is the host's (hostNetwork, where the
# static pods run too); on hosts sharing one kernel (the lab) it keeps exactly that host's process.
_FIND = ('find() {\n  me=$(readlink /proc/self/ns/net)\n  for q in $(pgrep -f -- "$pattern"); do\n'
         '    [ "$q" != "$$" ] && [ "$(readlink /proc/$q/ns/net 2>/dev/null)" = "$me" ] && echo "$q"\n'
         '  done\n  true\n}\n')


def kill_script(component: str, signal: str, duration: float, *, pattern: str | None = None) -> str:
    """The helper's program for `kill-process`: find the one `component` process of this host, signal it and
    report on the log — `chaoslab: old-pid N`, `signalled`, then for KILL/TERM `gone N after S` and
    `new-pid M` once the kubelet (or a supervisor) started it again, for STOP the process `state` (once
    stopped, as it is after 5 s, or `gone`). A STOP is resumed with CONT after `duration` seconds or on TERM
    (the pod deleted). Exit 3: no single process.

        >>> "kill -s STOP" in kill_script("kube-scheduler", "STOP", 30)
        True
    """
    if signal not in ("KILL", "TERM", "STOP"):
        raise ValueError(f"signal {signal!r} is not one of KILL, TERM, STOP")
    pattern = pattern or PROCESS_PATTERNS[component]
    wait = max(0, int(duration))
    resume = f'  kill -s CONT "$old" || rc=1\n  echo "{MARK} resumed $old rc=$rc"\n' if signal == "STOP" else "  :\n"
    watch = (
        # In the background, so the pod's TERM still ends the wait at once.
        "( s=0\n"
        '  while kill -0 "$old" 2>/dev/null; do sleep 0.2; s=$((s+1)); done\n'
        f'  echo "{MARK} gone $old after $((s/5))"\n'
        "  i=0\n"
        f"  while [ $i -lt {wait * 2} ]; do\n"
        '    n=$(find)\n'
        f'    case "$n" in ""|"$old") ;; *) echo "{MARK} new-pid $n"; exit 0;; esac\n'
        "    sleep 0.5; i=$((i+1))\n"
        "  done\n"
        f'  echo "{MARK} new-pid none" ) &\n'
        "w=$!\n") if signal in ("KILL", "TERM") else (
        # A signal is delivered, not obeyed, when kill returns: on a busy node the process may still be
        # running for a moment. Report its state once stopped (or as it is after 5 s).
        "i=0\n"
        "while :; do\n"
        "  st=$(sed -n 's/^State:[[:space:]]*//p' /proc/$old/status 2>/dev/null)\n"
        '  case "$st" in T*|"") break;; esac\n'
        "  [ $i -ge 50 ] && break\n"
        "  sleep 0.1; i=$((i+1))\n"
        "done\n"
        f'echo "{MARK} state ${{st:-gone}}"\n'
        "w=\n")
    return (
        f"pattern={shlex.quote(pattern)}\n"
        + _FIND
        + "rc=0\nundone=0\np=\nw=\n"
        + "old=$(find)\n"
        + "set -- $old\n"
        + f'if [ "$#" -ne 1 ]; then echo "{MARK} error want one {component} process, found: ${{old:-none}}"; exit 3; fi\n'
        + f'echo "{MARK} old-pid $old"\n'
        + f"undo() {{\n  [ \"$undone\" = 1 ] && return\n  undone=1\n{resume}}}\n"
        + f"trap '[ -n \"$p\" ] && kill $p 2>/dev/null; [ -n \"$w\" ] && kill $w 2>/dev/null; "
          f"pkill -P $$ 2>/dev/null; undo; "
          f"echo \"{MARK} undone rc=$rc on TERM\"; exit $rc' TERM INT\n"
        + f'kill -s {signal} "$old" || {{ echo "{MARK} error kill -s {signal} $old failed"; exit 4; }}\n'
        + f'echo "{MARK} signalled {signal} $old"\n'
        # The duration starts at the signal, before the watch (which may take a moment) begins.
        + f"sleep {wait} &\n"
        + "p=$!\n"
        + watch
        + "wait $p\n"
        + '[ -n "$w" ] && kill $w 2>/dev/null\n'
        + "undo\n"
        + f'echo "{MARK} undone rc=$rc"\n'
        + "exit $rc\n")


def trace_script(strace: Sequence[str], duration: float, *, component: str = "etcd",
                 pattern: str | None = None) -> str:
    """The helper's program for `disk-latency`: find the one `component` process of this host, attach
    `strace` (its argv, with the pid as the placeholder `{pid}`) and report `chaoslab: old-pid N`, then
    `traced N` once the process names the tracer (`TracerPid` in /proc/N/status); after `duration`
    seconds or on TERM (the pod deleted), stop strace, wait until the process names no tracer and report
    `untraced N delayed D rc=R` (D: the syncs strace delayed, from its output). Exit 3: no single process;
    4: strace did not attach.

        >>> "-p \"$old\"" in trace_script(["strace", "-p", "{pid}"], 30)
        True
    """
    pattern = pattern or PROCESS_PATTERNS[component]
    argv = " ".join('"$old"' if a == "{pid}" else shlex.quote(a) for a in strace)
    tracer = "sed -n 's/^TracerPid:[[:space:]]*//p' /proc/$old/status 2>/dev/null"
    return (
        f"pattern={shlex.quote(pattern)}\n"
        + _FIND
        + "rc=0\nundone=0\np=\nt=\nout=/tmp/chaoslab-strace.$$\n"
        + "old=$(find)\n"
        + "set -- $old\n"
        + f'if [ "$#" -ne 1 ]; then echo "{MARK} error want one {component} process, found: ${{old:-none}}"; exit 3; fi\n'
        + f'echo "{MARK} old-pid $old"\n'
        + "undo() {\n  [ \"$undone\" = 1 ] && return\n  undone=1\n"
        + '  [ -n "$t" ] && kill -s TERM "$t" 2>/dev/null\n'
        # strace detaches every thread on TERM; a process that names no tracer (or is gone) is free.
        + "  i=0\n"
        + f'  while [ -e /proc/$old ] && [ "$({tracer})" != 0 ]; do\n'
        + "    [ $i -ge 150 ] && { rc=1; break; }\n    sleep 0.1; i=$((i+1))\n  done\n"
        + "  d=$(grep -c DELAYED \"$out\" 2>/dev/null); rm -f \"$out\"\n"
        + f'  echo "{MARK} untraced $old delayed ${{d:-0}} rc=$rc"\n}}\n'
        + f"trap '[ -n \"$p\" ] && kill $p 2>/dev/null; undo; echo \"{MARK} undone rc=$rc on TERM\"; exit $rc' TERM INT\n"
        + f'{argv} -o "$out" </dev/null >/dev/null 2>&1 &\n'
        + "t=$!\n"
        + "i=0\n"
        + f'while [ "$({tracer})" = 0 ]; do\n'
        + f'  kill -0 "$t" 2>/dev/null || {{ echo "{MARK} error strace could not attach to $old"; exit 4; }}\n'
        + f'  [ $i -ge 100 ] && {{ kill "$t"; echo "{MARK} error strace did not attach to $old within 10 s"; exit 4; }}\n'
        + "  sleep 0.1; i=$((i+1))\n"
        + "done\n"
        + f'[ -e /proc/$old ] || {{ kill "$t" 2>/dev/null; echo "{MARK} error process $old is gone"; exit 4; }}\n'
        + f'echo "{MARK} traced $old"\n'
        + f"sleep {max(0, int(duration))} &\n"
        + "p=$!\n"
        + "wait $p\n"
        + "undo\n"
        + f'echo "{MARK} undone rc=$rc"\n'
        + "exit $rc\n")


def markers(log: str) -> list[str]:
    """The `chaoslab:` lines of a helper pod's log, without the prefix."""
    return [line.split(MARK, 1)[1].strip() for line in log.splitlines() if line.startswith(MARK)]


def pid_after(word: str, lines: list[str]) -> int | None:
    """The pid on the helper's `WORD N` marker line (None for `none` or no such line).

        >>> pid_after("old-pid", ["old-pid 42", "traced 42"]), pid_after("new-pid", ["new-pid none"])
        (42, None)
    """
    for line in lines:
        parts = line.split()
        if parts[:1] == [word] and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
    return None


class HelperPods:
    """Creates, follows and deletes helper pods through the API (one owner: the fault that injects).

    `sleep` and `clock` are injectable so unit tests run the create/wait/delete flow against a fake API
    without waiting."""

    def __init__(self, api: Any, settings: HelperPodSettings, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, poll: float = 0.5) -> None:
        self.api = api
        self.settings = settings
        self.sleep, self.clock, self.poll = sleep, clock, poll

    def path(self, name: str, namespace: str | None = None) -> str:
        return f"/api/v1/namespaces/{namespace or self.settings.namespace}/pods/{name}"

    def create(self, manifest: Mapping[str, Any]) -> None:
        ns = manifest["metadata"]["namespace"]
        try:
            create_pod(self.api, manifest, sleep=self.sleep, clock=self.clock)
        except TargetError as exc:
            raise InjectionError(f"helper pod {ns}/{manifest['metadata']['name']} could not be created ({exc}); "
                                 f"the kubeconfig needs `create pods` in {ns} and privileged pods must be "
                                 f"allowed there (PodSecurity: privileged)") from exc

    def log(self, name: str, namespace: str | None = None) -> str:
        resp = self.api.request("GET", self.path(name, namespace) + "/log")
        return str(resp.text) if resp.status_code == 200 else ""

    def wait_for(self, name: str, done: Callable[[list[str]], bool], timeout: float,
                 namespace: str | None = None) -> list[str]:
        """The pod's marker lines once `done(lines)` holds; `InjectionError` when the pod ends first, fails
        to start, or `timeout` seconds pass (the pod's phase and waiting reason in the message)."""
        start = self.clock()
        lines: list[str] = []
        while True:
            lines = markers(self.log(name, namespace))
            if done(lines) or any(line.startswith("error") for line in lines):
                return lines
            pod = self.api.get(self.path(name, namespace))
            phase = pod.get("status", {}).get("phase", "Pending")
            if phase in ("Succeeded", "Failed"):
                lines = markers(self.log(name, namespace))
                if done(lines):
                    return lines
                raise InjectionError(f"helper pod {name} ended ({phase}) before it reported; its log: "
                                     f"{lines or 'empty'}")
            if self.clock() - start > timeout:
                raise InjectionError(f"helper pod {name} did not report within {timeout:g} s (phase {phase}"
                                     f"{waiting_reason(pod)}); is the image {self.settings.image} pullable on "
                                     f"that node? (spec.target.helperPod.image)")
            self.sleep(self.poll)

    def delete(self, name: str, namespace: str | None = None) -> None:
        """Delete the pod (TERM: its script undoes); gone already is fine."""
        self.api.delete(self.path(name, namespace))


SERVICE_ACCOUNT_WAIT = 20.0
"""Seconds a pod's creation is asked again while its namespace's `default` ServiceAccount is not made yet."""


def create_pod(api: KubeApi, manifest: Mapping[str, Any], *, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> None:
    """Create a pod. In a namespace made seconds ago, ServiceAccount admission refuses every pod until the
    service-account controller has made the namespace's `default` account: ask again, for
    SERVICE_ACCOUNT_WAIT s at most; any other refusal at once (`TargetError`)."""
    path = f"/api/v1/namespaces/{manifest['metadata']['namespace']}/pods"
    deadline = clock() + SERVICE_ACCOUNT_WAIT
    while True:
        try:
            api.create(path, manifest)
            return
        except ApiError as exc:
            # Admission's own words; an RBAC refusal can name a service account too (the user
            # system:serviceaccount:…) and is not retried.
            if exc.status != 403 or "error looking up service account" not in str(exc) or clock() > deadline:
                raise
        sleep(0.25)


def waiting_reason(pod: Mapping[str, Any]) -> str:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return f", {waiting.get('reason')}: {waiting.get('message', '')}".rstrip(": ")
    return ""
