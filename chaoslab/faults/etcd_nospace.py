"""`etcd-nospace`: fill etcd to its backend quota with chaoslab's own keys until it raises the NOSPACE alarm,
as a cluster that ran out of space does: etcd turns read-only (every write, lease grant and Kubernetes
update fails with "mvcc: database space exceeded"; reads and deletes still work) until an operator frees
space and disarms the alarm. No other tool injects it.

What is written: values of `valueSize` bytes under `/chaoslab/nospace/<tag>/`, attached to a lease of
chaoslab's choosing (its id is in the undo before anything is written), until etcd refuses a write for lack
of space. Nothing of the user's is ever written over or deleted. `maxFill` (256 MiB) refuses a cluster
whose free quota is larger: the lab takes a small quota (`chaoslab lab up --quota-backend-bytes 33554432`).

The revert is the operator's runbook, each step timed onto the timeline (`runbook` events) as
`nospaceRecoveryTime` measures it: delete chaoslab's keys (and revoke their lease), compact to that
revision, defragment every member in turn, `alarm disarm`, first successful write
(`chaoslab.faults.etcd_maintenance.runbook`). Deleting alone frees nothing: the history keeps the values
until compaction, and the file keeps its size until defragmentation; the alarm stays until disarmed.

Dead-man's switch: before filling, a detached `python -m chaoslab.faults.etcd_maintenance` is started on
chaoslab's machine that runs the same runbook at `fillTimeout + duration + deadman` unless the revert ends
it (the fill may take up to `fillTimeout`, 120 s, and the duration only starts once etcd is full); the keys'
lease (60 s longer) deletes them even if that fails. `chaoslab recover` runs the runbook.
Needs etcd access from chaoslab (the lab, or a target with `etcd` endpoints and client certificates).

Timeline: ``nospace`` at injection (``keys``, ``bytes``, ``seconds`` to fill, ``quota``, ``db_size``
before), then ``runbook`` steps at revert.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import requests

from chaoslab.clients.etcd import EtcdMember, parse_metrics
from chaoslab.clients.hosts import Command
from chaoslab.errors import InjectionError, RevertError, TargetError
from chaoslab.faults.base import FaultParams, Injection, Record, SwitchedFault, Undo, ignore_events
from chaoslab.faults.etcd_maintenance import any_member, fill, runbook, switch_command, switch_pattern
from chaoslab.faults.partition import HEAL_MARGIN
from chaoslab.targets import Target

LEASE_MARGIN = 60
"""Seconds the keys' lease outlives the dead-man's switch."""
SWITCH_EXIT = 10.0
"""Seconds the switch gets to exit after SIGTERM, before the runbook runs (never both at once)."""


@dataclass(frozen=True)
class NospaceParams(FaultParams):
    valueSize: int = 256 * 1024  # camelCase fields: the YAML spelling, as build() passes them
    """Bytes per key written (default 256 KiB; etcd refuses requests above 1.5 MiB by default)."""
    maxFill: int = 256 << 20
    """Refuse when more than this many bytes would have to be written to reach the quota (default 256 MiB)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the dead-man's switch runs the runbook if chaoslab did not."""
    fillTimeout: int = 120
    """Seconds the fill may take before the fault gives up (and reverts); the switch waits this much longer,
    since the fault's duration only starts once etcd is full (default 120)."""

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if not 1024 <= self.valueSize <= 1 << 20:
            out.append(("valueSize", f"{self.valueSize} bytes: give 1024 to 1048576 (etcd's request limit is 1.5 MiB)"))
        if self.maxFill < self.valueSize:
            out.append(("maxFill", f"{self.maxFill} bytes is less than one value ({self.valueSize})"))
        if self.fillTimeout < 1:
            out.append(("fillTimeout", f"{self.fillTimeout} s: give at least 1"))
        return out


def _open(target: Target, timeout: float) -> dict[str, EtcdMember]:
    try:
        return target.etcd_members(timeout=timeout)
    except TargetError as exc:
        raise InjectionError(f"etcd-nospace: {target.name} gives no etcd access ({exc}); the fault writes to etcd "
                             f"directly") from exc


def _close(members: dict[str, EtcdMember]) -> None:
    for m in members.values():
        m.close()


class EtcdNospace(SwitchedFault[NospaceParams]):
    kind: ClassVar[str] = "etcd-nospace"
    params_type: ClassVar[type] = NospaceParams
    level: ClassVar[str] = "node"
    """Acts on etcd itself, not through the Kubernetes API."""

    def deadline(self) -> int:
        """Seconds after injection at which the switch runs the runbook: the fill, the duration, the margin."""
        return self.params.fillTimeout + super().deadline()

    def resolve(self, target: Target, index: int) -> Injection:
        members = _open(target, 3.0)
        try:
            metrics = any_member(members, lambda m: parse_metrics(m.metrics()))
        except (RuntimeError, requests.RequestException, ValueError) as exc:
            raise InjectionError(f"etcd-nospace: cannot read the quota of {target.name} ({exc})") from exc
        finally:
            _close(members)
        quota, size = int(metrics.get("quota", 0)), int(metrics.get("db_in_use", metrics.get("db_size", 0)))
        if quota - size > self.params.maxFill:
            raise InjectionError(
                f"etcd-nospace: {target.name} has {(quota - size) >> 20} MiB free under its {quota >> 20} MiB quota, "
                f"more than maxFill ({self.params.maxFill >> 20} MiB); start the lab with a small quota "
                f"(`chaoslab lab up --quota-backend-bytes 33554432`) or raise maxFill; nothing was written")
        tag = f"n{index}-{uuid.uuid4().hex[:8]}"
        undo = Undo("nospace-runbook", {"prefix": f"/chaoslab/nospace/{tag}/", "marker": f"chaoslab-{tag}",
                                        "lease": self.rng.randrange(1 << 40, 1 << 62), "quota": quota})
        return Injection(self.kind, index, "etcd", "cluster", tuple(f"etcd@{h}" for h in target.hosts("etcd")),
                         (undo,))

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        p = injection.undo[0].params
        members = _open(target, 5.0)
        try:
            any_member(members, lambda m: m.client.lease(self.deadline() + LEASE_MARGIN, lease_id=p["lease"]))
            # Armed before the first key: from here on the runbook runs even if chaoslab dies.
            target.run_commands([Command(switch_command((sys.executable,), members, p["prefix"],
                                                        int(time.time()) + self.deadline(), p["marker"], p["lease"]))])
            keys, written, seconds = fill(members, p["prefix"], self.params.valueSize, self.params.maxFill, p["lease"],
                                          self.params.fillTimeout)
            alarms = any_member(members, lambda m: m.alarms())
        except (RuntimeError, TargetError) as exc:
            _close(members)
            try:
                heal(target, p)
            except RevertError as again:
                raise InjectionError(f"etcd-nospace: could not fill etcd ({exc}); the runbook failed too "
                                     f"({again}); run `chaoslab recover`") from exc
            raise InjectionError(f"etcd-nospace: could not fill etcd ({exc}); reverted by the runbook") from exc
        _close(members)
        record("nospace", fault=self.kind, index=injection.index, keys=keys, bytes=written,
               seconds=round(seconds, 4), quota=p["quota"], alarms=[list(a) for a in alarms])
        if not any(a[1] == "NOSPACE" for a in alarms):
            heal(target, p)
            raise InjectionError(f"etcd-nospace: etcd refused a write but raised no NOSPACE alarm ({alarms}); "
                                 f"reverted by the runbook")

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        p = injection.undo[0].params
        return ([f"grant lease {p['lease']:x} (TTL {self.deadline() + LEASE_MARGIN} s)",
                 f"arm the dead-man's switch {p['marker']}: the runbook at {self.deadline()} s after injection",
                 (f"put {self.params.valueSize}-byte values under {p['prefix']} until NOSPACE "
                  f"(quota {p['quota']} bytes, at most {self.params.maxFill})")],
                [f"end the switch {p['marker']}", f"delete {p['prefix']} and revoke lease {p['lease']:x}",
                 "compact to that revision", *(f"defragment {h}" for h in target.hosts("etcd")),
                 "disarm the NOSPACE alarm", "first successful write"])


def heal(target: Target, params: dict[str, Any] | Any, record: Record | None = None) -> None:
    """Undo `nospace-runbook`: end the switch, then the runbook (each step recorded)."""
    pattern = switch_pattern(params["marker"])
    target.run_commands([Command(("pkill", "-TERM", "-f", pattern), may_fail=True)])
    deadline = time.monotonic() + SWITCH_EXIT
    while target.run_commands([Command(("pgrep", "-f", pattern), may_fail=True)])[0].split():
        if time.monotonic() > deadline:
            raise RevertError(f"etcd-nospace: the dead-man's switch {params['marker']} still runs {SWITCH_EXIT:g} s "
                              f"after SIGTERM; end it with `pkill -f '{pattern}'`, then `chaoslab recover`")
        time.sleep(0.1)
    try:
        members = target.etcd_members(timeout=10.0)
    except TargetError as exc:
        raise RevertError(f"etcd-nospace: no etcd access to run the runbook ({exc})") from exc
    try:
        runbook(members, params["prefix"], record, lease=params.get("lease"))
    except RuntimeError as exc:
        raise RevertError(f"etcd-nospace: {exc}; etcd may still be read-only; retry with `chaoslab recover`") from exc
    finally:
        _close(members)
