"""Who leads right now: the etcd leader (from the members' Status RPC) and the holder of a
leader-election Lease. Used by faults to pick `select: leader|follower`, and by `lab status`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from chaoslab.clients.etcd import EtcdMember, RpcError
from chaoslab.clients.kubeapi import KubeApi

if TYPE_CHECKING:
    from chaoslab.targets import Target

#: The Lease each leader-elected component holds in kube-system.
LEASES = {"kube-scheduler": "kube-scheduler", "kube-controller-manager": "kube-controller-manager"}


def holder_host(identity: str | None) -> str | None:
    """The host in a client-go leader-election identity (`<hostname>_<uuid>`)."""
    return identity.rsplit("_", 1)[0] if identity else None


def etcd_leader(members: Mapping[str, EtcdMember]) -> str | None:
    """The leader most reachable members name; None when none names one."""
    named: Counter[str] = Counter()
    for member in members.values():
        try:
            status = member.status()
        except RpcError:
            continue
        if status.leader_name:
            named[status.leader_name] += 1
    return named.most_common(1)[0][0] if named else None


def current_etcd_leader(target: Target) -> str | None:
    """`etcd_leader` of the target's members, opened for the question and closed after it."""
    members = target.etcd_members()
    try:
        return etcd_leader(members)
    finally:
        for m in members.values():
            m.close()


def lease_holder(api: KubeApi, component: str) -> str | None:
    """The holderIdentity of a component's Lease (None: not held)."""
    lease = api.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{LEASES[component]}")
    holder: str | None = lease.get("spec", {}).get("holderIdentity")
    return holder
