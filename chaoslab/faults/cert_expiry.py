"""`cert-expiry`: one link's leaf certificate is reissued from the cluster's own CA with a short lifetime
and left to expire, as a kubeadm certificate does after its year, so the link fails the way it would:
the component presenting it is refused by the apiserver (401) once the certificate has expired.

    - kind: cert-expiry
      link: scheduler-client      # kube-scheduler → apiserver (or controller-manager-client)
      lifetime: 30s               # from injection to expiry

How (the target says where the files are: `Target.certificate`; the lab keeps them in its pki/): the
original certificate is copied aside, a new one is signed by the CA with the same subject, key and
extensions, valid for `lifetime`, and written in its place; then every process that presents it is
restarted (SIGTERM; the supervisor starts it again) so it loads the short-lived certificate, which then
expires while it runs. The restart is the one artefact: a real certificate expires under a process that
loaded it long ago. What follows is the cluster's own doing and what the experiment measures: the leader
can no longer renew its Lease, steps down after the renew deadline and exits, and no one takes over while
the certificate stays expired. `lifetime` must leave the restarted components time to elect a leader
(the lab: a few seconds for the scheduler, which releases its Lease on exit; the controller-manager does
not, so its new leader needs up to a lease duration, 15 s).

Undo (`restore-certificate`, written before anything changes): put the original back (an atomic
rename), disarm the dead-man's switch, restart the processes so they load it, and check that the file on
disk is the long-lived one. The switch, armed before the certificate is replaced, does the same at
`duration + deadman` if chaoslab was SIGKILLed (`python -m chaoslab.faults.cert_expiry --heal FILE`).

Measure: the timeline event ``certificate`` (``link``, ``notAfter``, ``expiresIn`` seconds from the event)
gives the expiry instant; `certExpiryDetection` is the time from it to the first moment the steady state
is broken (the evidence names what failed), `recoveryAfterRevert` the time from the undo to the steady
state back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chaoslab.clients.hosts import Command
from chaoslab.clients.leaders import LEASES, holder_host, lease_holder
from chaoslab.errors import ChaoslabError, InjectionError, RevertError, TargetError
from chaoslab.faults.base import FaultParams, Injection, Record, SwitchedFault, Undo, ignore_events
from chaoslab.faults.netrules import cancel_dead_mans_switch, dead_mans_switch
from chaoslab.spec.durations import parse_duration
from chaoslab.targets import Target

HEAL_MARGIN = 60
RESTART_TIMEOUT = 30.0
"""Seconds to wait for a restarted process to be running again (the supervisor waits 2 s, then starts it)."""
LONG_ENOUGH = dt.timedelta(days=1)
"""A restored certificate must be valid for at least this long, or the undo counts as failed."""


@dataclass(frozen=True)
class CertExpiryParams(FaultParams):
    link: str = "scheduler-client"
    """Whose certificate: scheduler-client (kube-scheduler → apiserver) or controller-manager-client."""
    lifetime: str | float = "30s"
    """How long the reissued certificate is valid from injection (e.g. 30s; at least 1 s)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the dead-man's switch restores the original (default 60)."""

    def problems(self) -> list[tuple[str, str]]:
        out = []
        try:
            if parse_duration(self.lifetime, "lifetime") < 1:
                out.append(("lifetime", f"{self.lifetime!r}: give at least 1s"))
        except ValueError as exc:
            out.append(("lifetime", str(exc)))
        if isinstance(self.deadman, bool) or not isinstance(self.deadman, int) or self.deadman < 1:
            out.append(("deadman", f"{self.deadman!r}: give whole seconds, at least 1"))
        return out

    @property
    def seconds(self) -> float:
        return parse_duration(self.lifetime, "lifetime")


def reissue(cert_path: Path, ca_cert_path: Path, ca_key_path: Path, lifetime: float) -> x509.Certificate:
    """A copy of the certificate at `cert_path` (subject, public key, extensions), signed again by the CA,
    valid from five minutes ago for `lifetime` seconds from now."""
    original = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InjectionError(f"cert-expiry: the CA key {ca_key_path} is not an ECDSA key; only the lab's "
                             f"ECDSA CA is supported")
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(original.subject).issuer_name(ca.subject)
               .public_key(original.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(seconds=lifetime)))
    for ext in original.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(ca_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)


def not_after(path: Path) -> dt.datetime:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


class CertExpiry(SwitchedFault[CertExpiryParams]):
    kind: ClassVar[str] = "cert-expiry"
    params_type: ClassVar[type] = CertExpiryParams
    level: ClassVar[str] = "node"
    """Acts on hosts' files and processes, not through the API."""

    def resolve(self, target: Target, index: int) -> Injection:
        link = target.certificate(self.params.link)
        if not link.users:
            raise InjectionError(f"cert-expiry: nothing on {target.name} presents the {link.link} certificate")
        if not_after(link.cert) - dt.datetime.now(dt.UTC) < LONG_ENOUGH:
            raise InjectionError(f"cert-expiry: {link.cert} expires within a day already (a run that was "
                                 f"killed?); run `chaoslab recover` first")
        tag = f"c{index}-{uuid.uuid4().hex[:8]}"
        params = {"link": link.link, "cert": str(link.cert), "backup": f"{link.cert}.chaoslab-{tag}",
                  "users": [list(u) for u in link.users], "marker": f"chaoslab-{tag}", "tag": tag,
                  "switch": str(Path(tempfile.gettempdir()) / "chaoslab-cert" / f"{tag}.switch.json")}
        return Injection(self.kind, index, link.users[0][0], link.link, tuple(f"{c}@{h}" for c, h in link.users),
                         (Undo("restore-certificate", params),))

    def switch_command(self, params: Mapping[str, Any]) -> Command:
        heal = Command((sys.executable, "-m", "chaoslab.faults.cert_expiry", "--heal", params["switch"]))
        return Command(dead_mans_switch([heal], self.deadline(), params["marker"]))

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        p = injection.undo[0].params
        link = target.certificate(p["link"])
        return ([f"copy {p['cert']} to {p['backup']}",
                 " ".join(self.switch_command(p).argv[:3]) + f" ... (restore after {self.deadline()} s)",
                 f"reissue {p['cert']} from {link.ca_cert}, valid for {self.params.seconds:g} s",
                 *[f"restart {u} (SIGTERM)" for u in injection.targets]],
                restore_lines(p))

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        p = injection.undo[0].params
        link = target.certificate(p["link"])
        try:
            shutil.copy2(link.cert, p["backup"])
            switch = Path(p["switch"])
            switch.parent.mkdir(parents=True, exist_ok=True)
            switch.write_text(json.dumps({"target": target.describe(), "undo": dict(p)}))
            subprocess.run(self.switch_command(p).argv, check=True, timeout=10)
            cert = reissue(link.cert, link.ca_cert, link.ca_key, self.params.seconds)
            _write(link.cert, cert)
            restart(target, link.users)
        except (ChaoslabError, OSError, subprocess.SubprocessError, ValueError) as exc:
            try:
                restore_certificate(target, p)
            except ChaoslabError as again:
                raise InjectionError(f"cert-expiry: could not reissue {link.cert} ({exc}); and the undo failed "
                                     f"too ({again}); run `chaoslab recover`") from exc
            raise InjectionError(f"cert-expiry: could not reissue {link.cert} ({exc}); restored again") from exc
        expires = cert.not_valid_after_utc
        record("certificate", fault=self.kind, index=injection.index, link=link.link, cert=str(link.cert),
               notAfter=expires.isoformat(), expiresIn=round(expires.timestamp() - time.time(), 3),
               restarted=list(injection.targets))


def restore_lines(params: Mapping[str, Any]) -> list[str]:
    return [f"move {params['backup']} back to {params['cert']}", f"disarm the dead-man's switch {params['marker']}",
            *[f"restart {c}@{h} (SIGTERM)" for c, h in params["users"]]]


def restart(target: Target, users: Sequence[Sequence[str]]) -> None:
    """SIGTERM each process in turn and wait until its supervisor runs it again (a new pid); the holder of
    the component's leader Lease last, so a standby that already runs with the new files takes over (the
    scheduler releases its Lease on SIGTERM). A process that is not running now is left to its supervisor,
    which starts it with the files as they are."""
    for component, host in sorted(users, key=lambda u: _leads(target, u[0], u[1])):
        pid = target.pid(component, host)
        if pid is None:
            continue
        try:
            target.signal(component, host, "TERM")
        except InjectionError:
            continue  # exited meanwhile: it restarts with the new files anyway
        deadline = time.monotonic() + RESTART_TIMEOUT
        while target.pid(component, host) in (None, pid):
            if time.monotonic() > deadline:
                raise TargetError(f"{component} on {host} was not running again {RESTART_TIMEOUT:g} s after "
                                  f"SIGTERM; see `chaoslab lab status`")
            time.sleep(0.2)


def _leads(target: Target, component: str, host: str) -> bool:
    if component not in LEASES:
        return False
    try:
        return holder_host(lease_holder(target.api(), component)) == host
    except TargetError:
        return False


def restore_certificate(target: Target, params: Mapping[str, Any], disarm: bool = True) -> None:
    """The `restore-certificate` undo: the original back in place, the switch disarmed (`disarm`; not when
    the switch itself heals), the processes restarted; `RevertError` if the file on disk still expires
    within a day."""
    cert, backup = Path(params["cert"]), Path(params["backup"])
    if backup.exists():
        os.replace(backup, cert)
    if disarm:
        subprocess.run(cancel_dead_mans_switch(params["marker"]).argv, check=False, timeout=10)
    restart(target, params["users"])
    Path(params["switch"]).unlink(missing_ok=True)
    left = not_after(cert) - dt.datetime.now(dt.UTC)
    if left < LONG_ENOUGH:
        raise RevertError(f"cert-expiry {params['tag']}: {cert} is still short-lived (expires in "
                          f"{left.total_seconds():.0f} s) and no backup {backup} is left to restore")


def main(argv: Sequence[str] | None = None) -> int:
    """What the dead-man's switch runs: the undo in the switch file, on the target described there."""
    from chaoslab.targets import target_from_description

    parser = argparse.ArgumentParser(prog="python -m chaoslab.faults.cert_expiry")
    parser.add_argument("--heal", type=Path, required=True, help="switch file written by the fault")
    args = parser.parse_args(argv)
    if not args.heal.exists():
        return 0  # restored already
    data = json.loads(args.heal.read_text())
    for attempt in range(5):
        try:
            restore_certificate(target_from_description(data["target"]), data["undo"], disarm=False)
            return 0
        except ChaoslabError as exc:
            print(f"cert-expiry heal: {exc}", file=sys.stderr)
            time.sleep(2 + 4 * attempt)
    return 1


if __name__ == "__main__":
    sys.exit(main())
