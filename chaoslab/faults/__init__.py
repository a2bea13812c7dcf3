"""The fault registry (`chaoslab.registry.Registry`): one class per YAML `kind`, registered explicitly for
built-ins and through the `chaoslab.faults` entry-point group for third-party kinds (loaded only when an
unknown kind is asked for), each checked against the fault contract when it is registered.

    >>> fault = build("kill-process", {"component": "etcd", "select": "leader"})
    >>> fault.params.signal
    'KILL'
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.faults.api_overload import ApiOverload
from chaoslab.faults.base import Fault, FaultParams
from chaoslab.faults.cert_expiry import CertExpiry
from chaoslab.faults.degrade import NetworkDegrade
from chaoslab.faults.disk_latency import DiskLatency
from chaoslab.faults.drain_node import DrainNode
from chaoslab.faults.etcd_defrag import EtcdDefrag
from chaoslab.faults.etcd_nospace import EtcdNospace
from chaoslab.faults.evict_pods import EvictPods
from chaoslab.faults.kill_process import KillProcess
from chaoslab.faults.memory_limit import MemoryLimit
from chaoslab.faults.node_failure import NodeFailure
from chaoslab.faults.partition import PartitionFault
from chaoslab.faults.webhook_outage import WebhookOutage
from chaoslab.registry import Registry
from chaoslab.spec.checks import add_fault_check

LEVELS = ("api", "node")


def _takes(method: Any, name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def contract_problems(cls: type[Any]) -> list[str]:
    """What a fault class lacks of the contract (`chaoslab.faults.base.Fault`): a dataclass params type
    deriving from FaultParams, a `level` (`api` or `node`), `resolve(target, index)`,
    `inject(target, injection, record)`, `describe(target, injection)` and the helper-pod answers."""
    problems = []
    params_type = getattr(cls, "params_type", None)
    if not (isinstance(params_type, type) and dataclasses.is_dataclass(params_type)
            and issubclass(params_type, FaultParams)):
        problems.append("params_type must be a dataclass deriving from chaoslab.faults.base.FaultParams")
    if getattr(cls, "level", None) not in LEVELS:
        problems.append(f"level must be one of {', '.join(LEVELS)} (node: acts on hosts)")
    for method in ("resolve", "inject", "describe", "helper_pods", "refused_helper_pods"):
        if not callable(getattr(cls, method, None)):
            problems.append(f"has no {method}() (derive from chaoslab.faults.base.FaultBase for the defaults)")
    if callable(getattr(cls, "inject", None)) and not _takes(cls.inject, "record"):
        problems.append("inject(target, injection, record) must take `record` (the timeline's event function, "
                        "for what it does as it goes)")
    return problems


FAULTS: Registry[type[Any]] = Registry("fault", "chaoslab.faults", contract_problems)
register = FAULTS.register
fault_class = FAULTS.get_kind


register(KillProcess)
register(PartitionFault)
register(NetworkDegrade)
register(DrainNode)
register(EvictPods)
register(NodeFailure)
register(WebhookOutage)
register(CertExpiry)
register(ApiOverload)
register(DiskLatency)
register(EtcdDefrag)
register(EtcdNospace)
register(MemoryLimit)


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
    return list(cls.params_type(**params).problems())


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
