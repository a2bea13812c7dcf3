"""`etcd: {discover: kubeadm}` on the ssh target: the settings are checked field by field; the endpoints
come from the kube-apiserver mirror pods and are named after the hosts; the TLS files are fetched over ssh
(`cat`, sudo as the host says) into a private directory that `close` removes."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path
from typing import Any

import pytest
from test_ssh_commands import PARAMS

from chaoslab.errors import SpecError, TargetError
from chaoslab.targets import ssh as ssh_module
from chaoslab.targets.ssh import EtcdDiscovery, SshSettings, SshTarget

FLAGS = ["kube-apiserver", "--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
         "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
         "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key"]


def mirror(node: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": f"kube-apiserver-{node}"}, "spec": {"nodeName": node, "containers": [
        {"name": "kube-apiserver", "command": FLAGS}]}, "status": {"hostIP": ip}}


class Api:
    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods, self.asked = pods, 0

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        assert path == "/api/v1/namespaces/kube-system/pods" and params == {"labelSelector": "component=kube-apiserver"}
        self.asked += 1
        return {"items": self.pods}


class Discovering(SshTarget):
    """The ssh target with a fake API and a fake ssh: `cat FILE` answers the file's name as its content."""

    def __init__(self, etcd: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        super().__init__(SshSettings.from_params({**PARAMS, "etcd": etcd}))
        self._api = Api(pods)  # type: ignore[assignment]
        self.ran: list[tuple[str, ...]] = []

    def _run(self, argv: Any, *, check: bool = True) -> str:
        self.ran.append(tuple(argv))
        remote = shlex.split(argv[-1])
        assert remote[-3:-1] == ["cat", "--"]
        return f"-----BEGIN {remote[-1]}-----\n"


class Member:
    def __init__(self, name: str, host: str, port: int, tls: Any, timeout: float = 1.0) -> None:
        self.name, self.host, self.port, self.tls = name, host, port, tls


@pytest.fixture(autouse=True)
def members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh_module, "EtcdMember", Member)


def test_discover_is_a_setting_checked_field_by_field() -> None:
    s = SshSettings.from_params({**PARAMS, "etcd": {"discover": "kubeadm"}})
    assert s.etcd is None and s.etcd_discovery == EtcdDiscovery({}, None)
    with pytest.raises(SpecError) as info:
        SshSettings.from_params({**PARAMS, "etcd": {"discover": "kind", "ca": "/x", "colour": 1,
                                                    "endpoints": {"cp1": "http://e"}}})
    text = str(info.value)
    for expected in ("spec.target.etcd.discover: 'kind' is not kubeadm", "spec.target.etcd.colour: unknown field",
                     "spec.target.etcd.endpoints.cp1", "spec.target.etcd: ca given without cert, key"):
        assert expected in text, expected


def test_endpoints_are_named_after_the_hosts_and_the_files_fetched_privately_over_ssh() -> None:
    target = Discovering({"discover": "kubeadm"}, [mirror("cp2", "10.0.0.12"), mirror("cp1", "10.0.0.11")])
    found = target.etcd_members()
    assert {n: (m.host, m.port) for n, m in found.items()} == {"cp1": ("10.0.0.11", 2379), "cp2": ("10.0.0.12", 2379)}
    tls = found["cp1"].tls  # type: ignore[attr-defined]
    # From the first apiserver's host, cp2: with sudo, as its settings say.
    assert [shlex.split(line[-1]) for line in target.ran] == [
        ["sudo", "-n", "--", "cat", "--", f] for f in ("/etc/kubernetes/pki/etcd/ca.crt",
                                                      "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                                                      "/etc/kubernetes/pki/apiserver-etcd-client.key")]
    assert all(line[line.index("--") + 1] == "cp2.example.org" for line in target.ran)
    assert tls.key.read_text() == "-----BEGIN /etc/kubernetes/pki/apiserver-etcd-client.key-----\n"
    assert stat.S_IMODE(tls.key.stat().st_mode) == 0o600 and stat.S_IMODE(tls.key.parent.stat().st_mode) == 0o700
    target.etcd_members()
    assert len(target.ran) == 3 and target._api.asked == 1, "discovered once"  # type: ignore[union-attr]
    target.close()
    assert not tls.key.exists() and not tls.key.parent.exists()


def test_what_is_given_beside_discover_wins(tmp_path: Path) -> None:
    files = {k: str(tmp_path / f"{k}.pem") for k in ("ca", "cert", "key")}
    target = Discovering({"discover": "kubeadm", "endpoints": {"cp1": "https://lb.example:2379"}, **files},
                         [mirror("cp1", "10.0.0.11")])
    [(name, member)] = target.etcd_members().items()
    assert (name, member.host) == ("cp1", "lb.example") and str(member.tls.ca) == files["ca"]  # type: ignore[attr-defined]
    assert target.ran == [], "nothing fetched"


def test_an_endpoint_that_names_no_host_is_refused_with_the_fix() -> None:
    target = Discovering({"discover": "kubeadm"}, [mirror("cp9", "10.0.0.99")])
    with pytest.raises(TargetError, match=r"https://10.0.0.99:2379 .* names no host.*spec.target.etcd.endpoints"):
        target.etcd_members()
    with pytest.raises(TargetError, match="no kube-apiserver pod"):
        Discovering({"discover": "kubeadm"}, []).etcd_members()
