"""etcd maintenance as the storage faults use it: fill the database with chaoslab's own keys, defragment a
member, and the operator's NOSPACE runbook (delete chaoslab's keys, compact, defragment every member,
disarm the alarm, first successful write), each step timed. Only keys under `PREFIX` are ever written or
deleted: nothing of the user's.

It is also the dead-man's switch of `etcd-nospace`: started detached on chaoslab's machine, it sleeps
until `--until` and then runs the runbook, unless the revert ended it first (SIGTERM):

    python -m chaoslab.faults.etcd_maintenance --prefix /chaoslab/nospace/n0-1a2b3c4d/ \\
        --member cp1=127.0.0.1:16461 --member cp2=127.0.0.1:16462 --cacert ca.crt --cert admin.crt \\
        --key admin.key --until 1767225600 --detach --marker chaoslab-n0-1a2b3c4d
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etcd3 import etcdrpc
from etcd3.exceptions import Etcd3Exception

from chaoslab.clients.etcd import EtcdMember, RpcError, Tls, error_text

__all__ = ["PREFIX", "Step", "defragment", "fill", "main", "runbook", "switch_command", "switch_pattern"]

PREFIX = "/chaoslab/"
"""Every key the storage faults write lives below `/chaoslab/<fault>/<tag>/`."""
ERRORS = (RpcError, Etcd3Exception)
DEFRAG_TIMEOUT = 300.0
"""Seconds one member's defragmentation may take (it copies the whole database)."""
FIRST_WRITE_TIMEOUT = 60.0
_PREFIX = re.compile(r"^/chaoslab/[a-z-]+/[A-Za-z0-9-]+/$")
_MARKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")

Record = Callable[..., object]


@dataclass(frozen=True)
class Step:
    """One timed step of the runbook: what, how long, whether it worked, and what it said."""

    step: str
    seconds: float
    ok: bool
    detail: str = ""


def check_prefix(prefix: str) -> str:
    """Refuse anything but chaoslab's own `/chaoslab/<fault>/<tag>/`: the runbook deletes the prefix."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"prefix {prefix!r} is not chaoslab's own (/chaoslab/<fault>/<tag>/); nothing deleted")
    return prefix


def any_member(members: Mapping[str, EtcdMember], call: Callable[[EtcdMember], Any]) -> Any:
    """`call(member)` on each member in turn until one answers; the last error if none does."""
    last: BaseException | None = None
    for member in members.values():
        try:
            return call(member)
        except ERRORS as exc:
            last = exc
    raise RuntimeError(f"no member answered ({error_text(last) if last else 'no members'})")


def fill(members: Mapping[str, EtcdMember], prefix: str, value_size: int, max_bytes: int,
         lease: int | None = None, timeout: float = 120.0) -> tuple[int, int, float]:
    """Put `value_size`-byte values under `prefix` until etcd refuses a write for lack of space (the
    NOSPACE alarm is then raised); returns (keys written, bytes written, seconds). RuntimeError after
    `max_bytes` or `timeout` seconds without NOSPACE, or when a write fails for another reason."""
    check_prefix(prefix)
    value = os.urandom(value_size // 2).hex()[:value_size]
    written, started = 0, time.monotonic()
    while written * value_size <= max_bytes:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"wrote {written} keys ({written * value_size} bytes) in {timeout:g} s and etcd "
                               f"still has space; raise fillTimeout or use a smaller quota")
        key = f"{prefix}{written:08d}"

        def put(m: EtcdMember, key: str = key) -> None:
            m.client.put(key, value, lease=lease)

        try:
            any_member(members, put)
        except RuntimeError as exc:
            if "RESOURCE_EXHAUSTED" in str(exc) or _nospace(members):
                return written, written * value_size, time.monotonic() - started
            raise
        written += 1
    raise RuntimeError(f"wrote {written} keys ({written * value_size} bytes) under {prefix} and etcd still has "
                       f"space; the quota is larger than maxFill")


def _nospace(members: Mapping[str, EtcdMember]) -> bool:
    try:
        return any(alarm == "NOSPACE" for _, alarm in any_member(members, lambda m: m.alarms()))
    except RuntimeError:
        return False


def defragment(member: EtcdMember, timeout: float = DEFRAG_TIMEOUT) -> Step:
    """Defragment one member (stop-the-world for that member's backend while it copies the database)."""
    started = time.monotonic()
    try:
        member.client.maintenancestub.Defragment(etcdrpc.DefragmentRequest(), timeout)
        return Step(f"defragment {member.name}", round(time.monotonic() - started, 4), True)
    except ERRORS as exc:
        return Step(f"defragment {member.name}", round(time.monotonic() - started, 4), False, error_text(exc))


def _timed(name: str, call: Callable[[], str]) -> Step:
    started = time.monotonic()
    try:
        detail = call()
        return Step(name, round(time.monotonic() - started, 4), True, detail)
    except (RuntimeError, *ERRORS) as exc:
        return Step(name, round(time.monotonic() - started, 4), False, str(exc) if isinstance(exc, RuntimeError)
                    else error_text(exc))


def _disarm(members: Mapping[str, EtcdMember]) -> str:
    def disarm(m: EtcdMember) -> list[str]:
        done = []
        listing = m.client.maintenancestub.Alarm(
            etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET, memberID=0, alarm=etcdrpc.NONE), m.timeout)
        for a in listing.alarms:
            if a.alarm == etcdrpc.NOSPACE:
                m.client.maintenancestub.Alarm(etcdrpc.AlarmRequest(
                    action=etcdrpc.AlarmRequest.DEACTIVATE, memberID=a.memberID, alarm=a.alarm), m.timeout)
                done.append(f"{a.memberID:x}")
        return done
    done = any_member(members, disarm)
    return f"disarmed NOSPACE of {', '.join(done)}" if done else "no NOSPACE alarm was active"


def _first_write(members: Mapping[str, EtcdMember], prefix: str, timeout: float) -> str:
    deadline, key, last = time.monotonic() + timeout, f"{prefix}first-write", ""
    while time.monotonic() < deadline:
        try:
            any_member(members, lambda m: m.client.put(key, "1"))
            any_member(members, lambda m: m.client.delete(key))
            return "written and deleted"
        except RuntimeError as exc:
            last = str(exc)
            time.sleep(0.2)
    raise RuntimeError(f"no write succeeded within {timeout:g} s ({last})")


def runbook(members: Mapping[str, EtcdMember], prefix: str, record: Record | None = None,
            lease: int | None = None) -> list[Step]:
    """The NOSPACE runbook, step by step, each timed and recorded as a `runbook` event as it ends: delete
    chaoslab's keys under `prefix` (and revoke their lease), compact to the revision of the delete,
    defragment each member in turn, disarm the NOSPACE alarms, one successful write. Every step runs even
    if one before it failed (each is harmless when there is nothing to do); `RuntimeError` at the end
    naming the steps that failed."""
    check_prefix(prefix)
    steps: list[Step] = []
    revision: list[int] = []

    def note(step: Step) -> None:
        steps.append(step)
        if record is not None:
            record("runbook", step=step.step, seconds=step.seconds, ok=step.ok, detail=step.detail)

    if record is not None:
        record("runbook", step="start", seconds=0.0, ok=True, detail=prefix)

    def delete() -> str:
        resp = any_member(members, lambda m: m.client.delete_prefix(prefix))
        revision.append(resp.header.revision)
        if lease is not None:
            try:
                any_member(members, lambda m: m.client.revoke_lease(lease))
            except RuntimeError:
                pass  # gone already: expired, or revoked by an earlier try
        return f"{resp.deleted} keys deleted at revision {resp.header.revision}"

    def compact() -> str:
        rev = revision[0] if revision else any_member(members, lambda m: m.client.kvstub.Range(
            etcdrpc.RangeRequest(key=b"/"), m.timeout).header.revision)
        try:
            any_member(members, lambda m: m.client.compact(rev, physical=True))
        except RuntimeError as exc:
            if "required revision has been compacted" not in str(exc):
                raise
        return f"compacted to revision {rev}"

    note(_timed("delete keys", delete))
    note(_timed("compact", compact))
    for member in members.values():
        note(defragment(member))
    note(_timed("alarm disarm", lambda: _disarm(members)))
    note(_timed("first write", lambda: _first_write(members, prefix, FIRST_WRITE_TIMEOUT)))
    failed = [f"{s.step} ({s.detail})" for s in steps if not s.ok]
    if failed:
        raise RuntimeError("the NOSPACE runbook failed at: " + "; ".join(failed))
    return steps


# ---- the dead-man's switch --------------------------------------------------------------------------------


def switch_command(python: Sequence[str], members: Mapping[str, EtcdMember], prefix: str, until: int,
                   marker: str, lease: int | None = None) -> tuple[str, ...]:
    """The command that starts the detached switch (on chaoslab's machine: it reaches the members as
    chaoslab does). `python` runs chaoslab's Python."""
    if not _MARKER.match(marker):
        raise ValueError(f"marker {marker!r}: use 1-64 letters, digits or '-'")
    tls = next(iter(members.values())).tls
    argv: list[str] = [*python, "-m", "chaoslab.faults.etcd_maintenance", "--prefix", check_prefix(prefix)]
    for name, m in members.items():
        argv += ["--member", f"{name}={m.address}:{m.port}"]
    argv += ["--cacert", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key), "--until", str(int(until))]
    if lease is not None:
        argv += ["--lease", str(lease)]
    return (*argv, "--detach", "--marker", marker)


def switch_pattern(marker: str) -> str:
    """A `pkill -f` pattern matching only the switch started with `marker`."""
    if not _MARKER.match(marker):
        raise ValueError(f"marker {marker!r}: use 1-64 letters, digits or '-'")
    return f"^[^ ]+ -m chaoslab[.]faults[.]etcd_maintenance .* --marker {marker}$"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaoslab.faults.etcd_maintenance",
                                description="Run the NOSPACE runbook at --until unless ended first (SIGTERM).")
    p.add_argument("--prefix", required=True)
    p.add_argument("--member", action="append", required=True, help="NAME=HOST:PORT, one per member")
    p.add_argument("--cacert", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--until", type=float, required=True, help="Unix time at which to run the runbook")
    p.add_argument("--lease", type=int, default=None, help="the keys' lease, revoked with them")
    p.add_argument("--detach", action="store_true", help="return at once, leaving the switch in its own session")
    p.add_argument("--marker", default="", help="ignored; names the process for pkill")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    check_prefix(args.prefix)
    if args.detach:
        if os.fork():
            return 0
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if stop.wait(max(0.0, args.until - time.time())):
        return 0  # the revert ran the runbook itself
    tls = Tls(Path(args.cacert), Path(args.cert), Path(args.key))
    members = {}
    for spec in args.member:
        name, _, where = spec.partition("=")
        host, _, port = where.rpartition(":")
        members[name] = EtcdMember(name, host, int(port), tls, timeout=10.0)
    try:
        runbook(members, args.prefix, lease=args.lease)
    except RuntimeError:
        return 1
    finally:
        for m in members.values():
            m.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
