"""cert-expiry's pure parts: parameters, the reissued certificate, what the lab target says about a link,
and the two metrics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from chaoslab.errors import TargetError
from chaoslab.faults import FAULTS, build, param_problems
from chaoslab.faults.cert_expiry import CertExpiry, reissue
from chaoslab.judge.measure import measure
from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.pki import Pki
from chaoslab.targets.lab import LabTarget
from chaoslab.timeline import FORMAT, Timeline


def test_registered() -> None:
    assert FAULTS["cert-expiry"] is CertExpiry


@pytest.mark.parametrize(("params", "field"), [({"lifetime": "0s"}, "lifetime"), ({"lifetime": "soon"}, "lifetime"),
                                               ({"deadman": 0}, "deadman")])
def test_bad_parameters_are_named(params: dict[str, Any], field: str) -> None:
    assert [name for name, _ in param_problems("cert-expiry", params)] == [field]


def test_the_reissued_certificate_is_the_same_but_short_lived(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path)
    pair = pki.issue("kube-scheduler", cn="system:kube-scheduler", client=True)
    original = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    new = reissue(pair.cert, tmp_path / "ca.crt", tmp_path / "ca.key", 30)
    assert new.subject == original.subject and new.issuer == original.issuer
    assert new.public_key() == original.public_key()
    assert list(new.extensions) == list(original.extensions)
    left = new.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=28) < left <= dt.timedelta(seconds=30)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    new.verify_directly_issued_by(ca)


def test_the_lab_names_its_links_and_who_presents_them(tmp_path: Path) -> None:
    target = LabTarget(LabLayout(LabConfig(name="u", state_root=tmp_path)))
    link = target.certificate("scheduler-client")
    assert link.cert == tmp_path / "u" / "pki" / "kube-scheduler.crt"
    assert link.users == (("kube-scheduler", "cp1"), ("kube-scheduler", "cp2"), ("kube-scheduler", "cp3"))
    with pytest.raises(TargetError, match="links: scheduler-client, controller-manager-client"):
        target.certificate("etcd-peer")
    fault = build("cert-expiry", {"link": "controller-manager-client"}, duration=90)
    assert isinstance(fault, CertExpiry) and fault.deadline() == 150


def test_detection_and_recovery_are_timed_from_the_expiry_and_the_revert() -> None:
    records: list[dict[str, Any]] = [{"format": FORMAT, "startedWall": 0.0}]
    for i in range(100):  # the scheduler Lease: renewed every second except 12-20 s (restart) and 40-70 s
        t = float(i)
        if 12 <= t < 20 or 40 <= t < 70:
            continue
        records.append({"t": t, "probe": "lease", "subject": "kube-scheduler",
                        "values": {"holder": "cp1", "identity": "cp1_x", "renew": f"r{i}", "duration": 15}})
    records += [{"t": 10.0, "event": "inject", "detail": {"component": "kube-scheduler", "targets": []}},
                {"t": 11.0, "event": "certificate", "detail": {"link": "scheduler-client", "expiresIn": 27.0}},
                {"t": 65.0, "event": "revert", "detail": {"ok": True}},
                {"t": 99.5, "event": "run-end", "detail": {}}]
    records[1:] = sorted(records[1:], key=lambda r: r["t"])
    m = measure(Timeline.from_records(records), ("scheduler-leader",), settle=5.0, renewal_window=5.0)
    # Expired at 38 s; the last renewal at 39 s stands for the 5 s window: broken at 44 s.
    assert m.values["certExpiryDetection"] == 6.0
    assert "(scheduler-leader)" in m.evidence["certExpiryDetection"]
    assert m.values["certRecoveryTime"] == 5.0  # renewed again from 70 s
