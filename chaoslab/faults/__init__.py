"""The fault registry: one class per YAML `kind`, registered explicitly for built-ins and through the
`chaoslab.faults` entry-point group for third-party kinds (loaded only when an unknown kind is asked for).

    >>> fault = build("kill-process", {"component": "etcd", "select": "leader"})
    >>> fault.params.signal
    'KILL'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.faults.base import Fault
from chaoslab.faults.degrade import NetworkDegrade
from chaoslab.faults.disk_latency import DiskLatency
from chaoslab.faults.drain_node import DrainNode
from chaoslab.faults.etcd_defrag import EtcdDefrag
from chaoslab.faults.etcd_nospace import EtcdNospace
from chaoslab.faults.evict_pods import EvictPods
from chaoslab.faults.kill_process import KillProcess
from chaoslab.faults.node_failure import NodeFailure
from chaoslab.faults.partition import PartitionFault
from chaoslab.spec.checks import add_fault_check

FAULTS: dict[str, type[Any]] = {}


def register(cls: type[Any]) -> type[Any]:
    """Add a fault class; refuses a kind claimed twice or a params type that is not a dataclass."""
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} has no `kind`")
    if kind in FAULTS and FAULTS[kind] is not cls:
        raise TypeError(f"fault kind {kind!r} is claimed by {FAULTS[kind].__name__} and {cls.__name__}")
    if not dataclasses.is_dataclass(getattr(cls, "params_type", None)):
        raise TypeError(f"{cls.__name__}.params_type must be a dataclass")
    for method in ("resolve", "inject"):
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"{cls.__name__} has no {method}()")
    FAULTS[kind] = cls
    return cls


register(KillProcess)
register(PartitionFault)
register(NetworkDegrade)
register(DrainNode)
register(EvictPods)
register(NodeFailure)
register(DiskLatency)
register(EtcdDefrag)
register(EtcdNospace)


def fault_class(kind: str) -> type[Any]:
    if kind not in FAULTS:
        for ep in entry_points(group="chaoslab.faults"):
            if ep.name == kind:
                register(ep.load())
    if kind not in FAULTS:
        raise SpecError([f"unknown fault kind {kind!r}; known: {', '.join(sorted(FAULTS))}"])
    return FAULTS[kind]


def param_problems(kind: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for parameters of a built-in fault that contradict each other, from the params
    type's own `problems()` (the JSON schema checks each field alone). Unknown kinds and fields are left to
    `build`.

        >>> param_problems("partition", {"shape": "isolate", "minority": 2})[0][0]
        'minority'
    """
    cls = FAULTS.get(kind)
    fields = {f.name for f in dataclasses.fields(cls.params_type)} if cls else set()
    if cls is None or set(params) - fields:
        return []
    check = getattr(cls.params_type(**params), "problems", None)
    return list(check()) if callable(check) else []


add_fault_check(param_problems)  # so `chaoslab validate` reports them with file, line and field


def build(kind: str, params: Mapping[str, Any], where: str = "", duration: float = 0.0) -> Fault:
    """A fault object from a kind and its parameters as written in the experiment; `duration` is how long
    it will hold (faults that must undo themselves if chaoslab dies need it)."""
    cls = fault_class(kind)
    fields = {f.name for f in dataclasses.fields(cls.params_type)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise SpecError([(f"{where or kind}: unknown parameter(s) {', '.join(unknown)}; "
                          f"{kind} takes {', '.join(sorted(fields))}")])
    if problems := param_problems(kind, params):
        raise SpecError([f"{where or kind}.{name}: {message}" for name, message in problems])
    fault: Fault = cls(cls.params_type(**params), duration=duration)
    return fault
