"""Checks that plugins contribute to loading an experiment. `chaoslab.spec` imports no plugin (faults,
targets and probes sit above it), yet a fault's parameters that contradict each other, or an ssh target's
hosts, must be reported with file, line and field like every other problem. So each plugin registry adds
its checks here when it is imported (`chaoslab.faults` its parameter checks, `chaoslab.targets` the ssh
target's), and the loader asks this module. Callers that load experiments import `chaoslab.plan`, which
imports every registry.

    >>> add_fault_check(lambda kind, params: [("count", "must be 1")] if params.get("count") == 2 else [])
    >>> fault_problems("kill-process", {"count": 2})
    [('count', 'must be 1')]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

FieldPath = tuple[str | int, ...]
FaultCheck = Callable[[str, Mapping[str, Any]], Sequence[tuple[str, str]]]
"""(kind, params with defaults) → (field, message) for each problem."""
TargetCheck = Callable[[Mapping[str, Any]], Sequence[tuple[FieldPath, str]]]
"""spec.target as written → (path under spec.target, message) for each problem."""

_fault_checks: list[FaultCheck] = []
_target_checks: dict[str, TargetCheck] = {}


def add_fault_check(check: FaultCheck) -> None:
    if check not in _fault_checks:
        _fault_checks.append(check)


def add_target_check(kind: str, check: TargetCheck) -> None:
    _target_checks[kind] = check


def fault_problems(kind: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [problem for check in _fault_checks for problem in check(kind, params)]


def target_problems(target: Mapping[str, Any]) -> list[tuple[FieldPath, str]]:
    check = _target_checks.get(str(target.get("kind")))
    return list(check(target)) if check else []
