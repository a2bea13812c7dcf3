"""The lab's public-key infrastructure: one CA, serving and client certificates, service-account keys,
and the kubeconfigs that carry them. Called by `chaoslab.lab.up` once per lab; pure file writing.

Layout under `LabLayout.pki_dir`, kubeadm-like:

    ca.crt ca.key                  the lab CA (signs everything below)
    etcd-cpN.crt/.key              etcd member cpN: server and peer (both EKUs), SANs = its address + loopback
    apiserver-cpN.crt/.key         kube-apiserver on cpN: SANs = its address, loopback, kubernetes.default…
    apiserver-etcd-client.crt/.key kube-apiserver → etcd
    admin.crt/.key                 O=system:masters: kubectl, chaoslab, etcd probes
    kube-scheduler.crt/.key        CN=system:kube-scheduler
    kube-controller-manager.crt/.key   CN=system:kube-controller-manager
    nodes.crt/.key                 the node simulator (plays every kubelet, so O=system:masters)
    sa.key sa.pub                  service-account token signing keys

Keys are ECDSA P-256: fast to make (the whole set in well under a second) and accepted by every component.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chaoslab.lab.config import LabLayout

_VALIDITY = dt.timedelta(days=365)
#: First address of the lab's service CIDR (`--service-cluster-ip-range`): the `kubernetes` Service.
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


class Pki:
    """Issues the lab's certificates into one directory.

    >>> pki = Pki.create(tmp_path)                                  # doctest: +SKIP
    >>> pki.issue("admin", cn="kubernetes-admin", org="system:masters", client=True)   # doctest: +SKIP
    """

    def __init__(self, directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> None:
        self.dir = directory
        self._ca_key = ca_key
        self._ca_cert = ca_cert

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @classmethod
    def create(cls, directory: Path, common_name: str = "chaoslab-ca") -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + 10 * _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        _write_key(directory / "ca.key", key)
        (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, key, cert)

    def issue(
        self,
        name: str,
        *,
        cn: str,
        org: str | None = None,
        dns: Iterable[str] = (),
        ips: Iterable[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, org))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        pair = KeyPair(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        _write_key(pair.key, key)
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def service_account_keys(self) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        pair = KeyPair(self.dir / "sa.pub", self.dir / "sa.key")
        _write_key(pair.key, key)
        pair.cert.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return pair


def write_kubeconfig(path: Path, *, server: str, ca: Path, pair: KeyPair, user: str, cluster: str) -> None:
    """A kubeconfig with file references (not inline data), so it stays readable and small."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)


def create_lab_pki(layout: LabLayout) -> None:
    """Every certificate, key and kubeconfig the lab's components use. Overwrites what was there."""
    pki = Pki.create(layout.pki_dir, f"chaoslab-{layout.config.name}-ca")
    loopback = ["127.0.0.1"]
    for host in layout.hosts:
        pki.issue(f"etcd-{host.name}", cn=host.name, dns=[host.name, "localhost"],
                  ips=[host.address, *loopback], server=True, client=True)
    for host in layout.apiserver_hosts:
        pki.issue(
            f"apiserver-{host.name}", cn="kube-apiserver",
            dns=[host.name, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"],
            ips=[host.address, KUBERNETES_SERVICE_IP, *loopback], server=True,
        )
    pki.issue("apiserver-etcd-client", cn="kube-apiserver-etcd-client", client=True)
    pki.service_account_keys()
    cluster = layout.context
    identities = {
        "admin": ("kubernetes-admin", "system:masters"),
        "nodes": ("chaoslab-nodes", "system:masters"),
        "kube-scheduler": ("system:kube-scheduler", None),
        "kube-controller-manager": ("system:kube-controller-manager", None),
    }
    pairs = {name: pki.issue(name, cn=cn, org=org, client=True) for name, (cn, org) in identities.items()}
    for name in ("admin", "nodes"):
        write_kubeconfig(layout.kubeconfig_for(name), server=layout.apiserver_url, ca=pki.ca,
                         pair=pairs[name], user=name, cluster=cluster)
    for host in layout.hosts:
        # kubeadm-style: each scheduler and controller-manager talks to its own host's apiserver.
        for name in ("kube-scheduler", "kube-controller-manager"):
            write_kubeconfig(layout.kubeconfig_for(name, host), server=layout.local_apiserver_url(host),
                             ca=pki.ca, pair=pairs[name], user=name, cluster=cluster)
