"""What the two network faults (`partition`, `network-degrade`) share: the dead-man's switch deadline, the
dry-run description of their commands, and the helper-pod path (`chaoslab.faults.netpods`) they take on
a kubeconfig target. Each fault says only what is its own: the rules per host (`rules`), their heal
(`heal`), and the commands one helper pod runs (`host_commands`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from chaoslab.faults import netpods
from chaoslab.faults.base import D, Injection, Record, SwitchedFault, heal_lines, network_lines
from chaoslab.faults.netrules import Command
from chaoslab.targets import Target


class NetworkFault(SwitchedFault[D]):
    kind: ClassVar[str]

    def rules(self, target: Target, params: Mapping[str, Any]) -> Mapping[str, Sequence[Command]]:
        """Host → the commands that put its part of the fault in place (unwrapped)."""
        raise NotImplementedError

    def heal(self, params: Mapping[str, Any]) -> Mapping[str, Sequence[Command]]:
        """Host → the commands that remove it: what the dead-man's switch runs."""
        raise NotImplementedError

    def host_commands(self, target: Target, injection: Injection) -> netpods.HostCommands:
        """Through helper pods: host → (its commands, its heal)."""
        raise NotImplementedError

    def notes(self, params: Mapping[str, Any]) -> list[str]:
        """More `describe` lines for what the rules alone do not show."""
        return []

    def inject_by_pods(self, target: Target, injection: Injection, record: Record) -> None:
        netpods.inject(target, netpods.runner_of(target, self.kind), self.kind, injection.undo,
                       self.host_commands(target, injection), self.duration, record)

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        if injection.through_pods:
            return netpods.describe(injection.undo, self.host_commands(target, injection), self.duration)
        params = injection.undo[0].params
        lines = network_lines(target, self.heal(params), self.deadline(), params["marker"], self.rules(target, params))
        return lines + self.notes(params), heal_lines(params)

    def helper_pods(self, target: Target, injection: Injection) -> list[dict[str, Any]]:
        """The pods `inject` would create through the API (generated, not created)."""
        return netpods.manifests(target, injection.undo, self.host_commands(target, injection), self.duration,
                                 netpods.runner_of(target, self.kind).settings)
