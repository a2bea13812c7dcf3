import ipaddress
from pathlib import Path

import yaml
from cryptography import x509

from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.pki import create_lab_pki


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_lab_pki_issues_certs_chained_to_one_ca_with_the_right_names(tmp_path: Path) -> None:
    layout = LabLayout(LabConfig(state_root=tmp_path))
    (layout.state_dir / "kubeconfigs").mkdir(parents=True)
    create_lab_pki(layout)
    ca = load(layout.pki_dir / "ca.crt")
    etcd = load(layout.pki_dir / "etcd-cp2.crt")
    etcd.verify_directly_issued_by(ca)
    ips = etcd.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.IPAddress)
    assert {ipaddress.ip_address("10.213.0.12"), ipaddress.ip_address("127.0.0.1")} <= set(ips)
    admin = load(layout.pki_dir / "admin.crt")
    assert "O=system:masters" in admin.subject.rfc4514_string()
    assert (layout.pki_dir / "admin.key").stat().st_mode & 0o077 == 0


def test_component_kubeconfigs_point_at_their_own_hosts_apiserver(tmp_path: Path) -> None:
    layout = LabLayout(LabConfig(state_root=tmp_path))
    (layout.state_dir / "kubeconfigs").mkdir(parents=True)
    create_lab_pki(layout)
    cfg = yaml.safe_load(layout.kubeconfig_for("kube-scheduler", layout.host("cp3")).read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == "https://10.213.0.13:6443"
    admin = yaml.safe_load(layout.kubeconfig.read_text())
    assert admin["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"
    assert Path(admin["users"][0]["user"]["client-certificate"]).exists()
