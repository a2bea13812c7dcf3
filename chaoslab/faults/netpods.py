"""Network faults (`partition`, `network-degrade`) through privileged helper pods: one pod per host whose
rules change, each running that host's netrules commands (`chaoslab.targets.helperpod.script`: apply,
hold for the fault's duration, heal — also on TERM, when chaoslab deletes the pod, and when
`activeDeadlineSeconds` runs out, so the host heals itself even when chaoslab is gone).

Called by the two faults when their target runs helper pods (a kubeconfig target with
`spec.target.helperPod`). `pod_undo` fixes each pod's name and node when the fault is resolved, so the
undo written to the run directory before anything is created is `delete-pod` per pod; `manifest` builds
a pod from the commands the fault computes for its host (the same `chaoslab.faults.netrules` argv as over ssh
or in the lab, quoted one token at a time by `script`); `inject` creates the pods and waits until each
has applied its rules.

    >>> undo = Undo("delete-pod", {"namespace": "chaoslab", "name": "chaoslab-partition-0-0-1a2b3c",
    ...                            "node": "cp-1", "host": "cp-1"})
    >>> pod = manifest(undo.params, [Command(("iptables", "-w", "-N", "CHAOSLAB-t"))],
    ...                [Command(("iptables", "-w", "-X", "CHAOSLAB-t"))], 30, HelperPodSettings())
    >>> pod["spec"]["nodeName"], "iptables -w -N CHAOSLAB-t || rc=1" in pod["spec"]["containers"][0]["command"][2]
    ('cp-1', True)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chaoslab.errors import InjectionError
from chaoslab.faults.base import Record, Undo
from chaoslab.faults.netrules import Command
from chaoslab.targets import Target
from chaoslab.targets.helperpod import HelperPods, HelperPodSettings, pod_manifest, script

HostCommands = Callable[[str], tuple[Sequence[Command], Sequence[Command]]]
"""host → (commands that apply its part of the fault, commands that heal it), unwrapped."""


def runner_of(target: Target, fault: str) -> HelperPods:
    """The target's helper pods; `InjectionError` when it runs none."""
    runner = target.helper_pods()
    if runner is None:
        raise InjectionError(f"{fault}: {target.name} does not run helper pods")
    return runner


def pod_undo(target: Target, runner: HelperPods, short: str, index: int, hosts: Sequence[str],
             extra: Mapping[str, Any]) -> tuple[Undo, ...]:
    """One `delete-pod` per host, named `chaoslab-<short>-<index>-<i>-<run>` and pinned to the host's node
    (`node_of`, never a guess); `extra` (the fault's tag, flows …) goes with each, so `inject` rebuilds the
    same commands."""
    run = uuid.uuid4().hex[:6]
    return tuple(Undo("delete-pod", {"namespace": runner.settings.namespace, "name": f"chaoslab-{short}-{index}-{i}-{run}",
                                     "node": target.node_of(h), "host": h, **extra}) for i, h in enumerate(hosts))


def manifest(params: Mapping[str, Any], commands: Sequence[Command], heal: Sequence[Command], duration: float,
             settings: HelperPodSettings) -> dict[str, Any]:
    """The pod that applies `commands` on `params["node"]`, holds `duration` seconds and runs `heal`."""
    program = script(commands, heal, duration)
    return pod_manifest(params["name"], params["node"], program, duration, settings)


def manifests(target: Target, undo: Sequence[Undo], commands_of: HostCommands, duration: float,
              settings: HelperPodSettings) -> list[dict[str, Any]]:
    return [manifest(u.params, *commands_of(u.params["host"]), duration, settings) for u in undo]


def describe(undo: Sequence[Undo], commands_of: HostCommands, duration: float) -> tuple[list[str], list[str]]:
    """`describe` of a network fault through helper pods: each pod, the commands its script applies, and
    what it runs when deleted."""
    lines, undone = [], []
    for u in undo:
        pod, host = f"{u.params['namespace']}/{u.params['name']}", u.params["host"]
        apply, heal = commands_of(host)
        lines.append(f"create privileged pod {pod} on node {u.params['node']} ({host}), holding {duration:g} s "
                     f"then healing:")
        lines += [f"  {host}: {line}" for c in apply for line in c.shown()]
        undone.append(f"delete pod {pod} (on TERM its script runs: {'; '.join(c.shell() for c in heal)})")
    return lines, undone


def inject(target: Target, runner: HelperPods, fault: str, undo: Sequence[Undo], commands_of: HostCommands,
           duration: float, record: Record) -> None:
    """Create every host's pod, then wait until each says `applied rc=0`. Any other answer — a command that
    failed, a pod that never starts — fails the injection; the runner's revert then deletes the pods (undo
    `delete-pod`), whose scripts heal on TERM."""
    start = time.monotonic()
    pods = manifests(target, undo, commands_of, duration, runner.settings)
    for u, pod in zip(undo, pods, strict=True):
        runner.create(pod)
        record("helper-pod-created", fault=fault, host=u.params["host"],
               pod=f"{u.params['namespace']}/{u.params['name']}", node=u.params["node"])
    for u in undo:
        ns, name, host = u.params["namespace"], u.params["name"], u.params["host"]
        remaining = max(1.0, runner.settings.start_timeout - (time.monotonic() - start))
        lines = runner.wait_for(name, lambda ls: any(x.startswith("applied ") for x in ls), remaining, ns)
        applied = next((x for x in lines if x.startswith("applied ")), "")
        if applied != "applied rc=0":
            raise InjectionError(f"{fault}: helper pod {ns}/{name} on node {u.params['node']} ({host}): a command "
                                 f"failed ({applied or lines}); see `kubectl -n {ns} logs {name}` (does the image "
                                 f"have iptables and tc, and the node's kernel netem?); reverting")
        record("helper-pod-applied", fault=fault, host=host, pod=f"{ns}/{name}",
               after=round(time.monotonic() - start, 3))
