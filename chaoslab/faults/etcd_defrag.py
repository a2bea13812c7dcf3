"""`etcd-defrag`: defragment etcd members while the workload runs — one (`leader`, `follower`, `random`,
`host:NAME`) or `all`, one after another, as an operator's maintenance job does.

Defragmentation rewrites the member's whole database into a new file and holds the backend's lock while it
copies: the member serves no reads and applies no writes until it is done (stop-the-world, per member),
while raft goes on, so a defragmenting leader keeps its leadership but its clients wait. The pause grows
with the live data (the lab's is a few MB: tens of milliseconds); `ballast` writes that many bytes of
chaoslab's own keys under `/chaoslab/defrag/<tag>/` first, so the copy has something to do, and a
`disk-latency` fault listed before this one stretches each of the copy's commits (that is how 17–21 s
pauses happen on slow disks).

The defragmentation itself cannot be undone and needs no undo; the ballast is chaoslab's and is removed at
revert (`delete-keys`: the prefix, then its lease), and its lease (TTL `duration + deadman`) is the dead-man's
switch: etcd deletes the keys itself if chaoslab dies.

Timeline: ``defrag`` per member at injection (``member``, ``seconds`` the call took, ``ok``, ``error``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoslab.clients.etcd import EtcdMember
from chaoslab.errors import InjectionError, RevertError, TargetError
from chaoslab.faults.base import FaultBase, FaultParams, Injection, Record, Undo, ignore_events
from chaoslab.faults.etcd_maintenance import any_member, check_prefix, defragment
from chaoslab.faults.partition import HEAL_MARGIN, select_etcd_host
from chaoslab.targets import Target


@dataclass(frozen=True)
class DefragParams(FaultParams):
    select: str = "leader"
    """The member(s) by etcd role: leader, follower, random, all (one after another) or host:NAME."""
    ballast: int = 0
    """Bytes of chaoslab's own keys written first, so the copy has something to do (default 0: none)."""
    valueSize: int = 256 * 1024  # camelCase: the YAML spelling
    """Bytes per ballast key (default 256 KiB)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the ballast's lease runs out if chaoslab did not delete it."""

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if not (self.select in ("leader", "follower", "random", "all") or self.select.startswith("host:")):
            out.append(("select", f"{self.select!r} is not one of leader, follower, random, all, host:NAME"))
        if self.ballast < 0 or self.ballast > 1 << 30:
            out.append(("ballast", f"{self.ballast} bytes: give 0 to 1 GiB"))
        if not 1024 <= self.valueSize <= 1 << 20:
            out.append(("valueSize", f"{self.valueSize} bytes: give 1024 to 1048576"))
        return out


class EtcdDefrag(FaultBase[DefragParams]):
    kind: ClassVar[str] = "etcd-defrag"
    params_type: ClassVar[type] = DefragParams
    level: ClassVar[str] = "node"
    """Acts on etcd itself, not through the Kubernetes API."""

    def resolve(self, target: Target, index: int) -> Injection:
        if self.params.select == "all":
            role, hosts = "all", target.hosts("etcd")
        else:
            role, host, _ = select_etcd_host(target, self.params.select, self.rng, self.kind)
            hosts = [host]
        undo: tuple[Undo, ...] = ()
        if self.params.ballast:
            tag = f"f{index}-{uuid.uuid4().hex[:8]}"
            undo = (Undo("delete-keys", {"prefix": f"/chaoslab/defrag/{tag}/",
                                         "lease": self.rng.randrange(1 << 40, 1 << 62)}),)
        return Injection(self.kind, index, "etcd", role, tuple(f"etcd@{h}" for h in hosts), undo)

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        try:
            members = target.etcd_members(timeout=10.0)
        except TargetError as exc:
            raise InjectionError(f"etcd-defrag: {target.name} gives no etcd access ({exc})") from exc
        try:
            if injection.undo:
                self._ballast(members, injection.undo[0].params, record, injection.index)
            for t in injection.targets:
                host = t.split("@", 1)[1]
                step = defragment(members[host])
                record("defrag", fault=self.kind, index=injection.index, member=host, seconds=step.seconds,
                       ok=step.ok, error=step.detail or None)
                if not step.ok:
                    raise InjectionError(f"etcd-defrag: defragmenting {host} failed after {step.seconds:.1f} s "
                                         f"({step.detail}); see `chaoslab lab logs etcd --host {host}`")
        except RuntimeError as exc:
            raise InjectionError(f"etcd-defrag: {exc}") from exc
        finally:
            for m in members.values():
                m.close()

    def _ballast(self, members: dict[str, EtcdMember], p: dict[str, Any] | Any, record: Record, index: int) -> None:
        ttl = int(self.duration) + self.params.deadman
        any_member(members, lambda m: m.client.lease(ttl, lease_id=p["lease"]))
        value = "b" * self.params.valueSize
        started, keys = time.monotonic(), 0
        while keys * self.params.valueSize < self.params.ballast:
            key = f"{p['prefix']}{keys:08d}"

            def put(m: EtcdMember, key: str = key) -> None:
                m.client.put(key, value, lease=p["lease"])

            any_member(members, put)
            keys += 1
        record("ballast", fault=self.kind, index=index, keys=keys, bytes=keys * self.params.valueSize,
               seconds=round(time.monotonic() - started, 4))

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        lines = []
        if injection.undo:
            p = injection.undo[0].params
            lines.append(f"write {self.params.ballast} bytes of ballast under {p['prefix']} (lease {p['lease']:x}, "
                         f"TTL {int(self.duration) + self.params.deadman} s)")
        lines += [f"defragment {t.split('@', 1)[1]}" for t in injection.targets]
        undo = [f"delete {u.params['prefix']} and revoke lease {u.params['lease']:x}" for u in injection.undo]
        return lines, undo


def delete_keys(target: Target, params: dict[str, Any] | Any) -> None:
    """Undo `delete-keys`: delete chaoslab's prefix and revoke its lease (gone already is fine)."""
    prefix = check_prefix(params["prefix"])
    try:
        members = target.etcd_members(timeout=10.0)
    except TargetError as exc:
        raise RevertError(f"cannot delete {prefix}: no etcd access ({exc}); its lease deletes it later") from exc
    try:
        any_member(members, lambda m: m.client.delete_prefix(prefix))
        try:
            any_member(members, lambda m: m.client.revoke_lease(params["lease"]))
        except RuntimeError:
            pass  # expired or revoked already
    except RuntimeError as exc:
        raise RevertError(f"cannot delete {prefix} ({exc}); its lease deletes it later") from exc
    finally:
        for m in members.values():
            m.close()
