"""Waiting for the real lab to get somewhere, for the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.clients.leaders import LEASES
from chaoslab.errors import TargetError
from chaoslab.targets.lab import LabTarget

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float, what: str) -> T:
    """`check()`'s first truthy value, polled every 250 ms; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.25)
    return value


def etcd_leaders(target: LabTarget, timeout: float = 1.5) -> set[str | None]:
    """The leaders the etcd members name now (one set entry per distinct answer); RpcError if one does not
    answer."""
    members = target.etcd_members(timeout=timeout)
    try:
        return {m.status().leader_name for m in members.values()}
    finally:
        for m in members.values():
            m.close()


def renewing_holder(api: KubeApi, component: str, timeout: float = 60) -> str:
    """The holder of a component's Lease once it has been seen renewing it.

    A Lease can name a holder that is already gone (killed by an earlier test, its Lease not yet
    expired): a failover test that picks that holder would time a takeover that was under way
    before its fault. Two reads of the same holder with a later renewTime prove it alive."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{LEASES[component]}"

    def read() -> tuple[str | None, str | None]:
        try:
            spec = api.get(path).get("spec", {})
        except TargetError:  # e.g. 500 "etcdserver: leader changed" while an earlier test's election settles
            return None, None
        return spec.get("holderIdentity"), spec.get("renewTime")

    def renewed() -> str | None:
        holder, renew = read()
        if holder and holder == first[0] and renew != first[1]:
            return holder
        first[:] = [holder, renew]
        return None

    first = list(read())
    return eventually(renewed, timeout, f"the {component} Lease renewed by one holder")
