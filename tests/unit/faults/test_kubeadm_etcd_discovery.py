"""etcd endpoints and TLS files from a kubeadm kube-apiserver mirror pod (a manifest shaped like the one
kubeadm writes to /etc/kubernetes/manifests/kube-apiserver.yaml, as the API serves its mirror pod)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.errors import TargetError
from chaoslab.targets.kubeadm import apiserver_flags, discover, etcd_flags, fetch_tls
from chaoslab.targets.kubeconfig import discovered_etcd

MIRROR_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-cp-1
  namespace: kube-system
  labels: {component: kube-apiserver, tier: control-plane}
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.11:6443
    kubernetes.io/config.mirror: 3d6e2b0c
spec:
  nodeName: cp-1
  hostNetwork: true
  priorityClassName: system-node-critical
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.28.2
    command:
    - kube-apiserver
    - --advertise-address=10.0.0.11
    - --allow-privileged=true
    - --authorization-mode=Node,RBAC
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --enable-admission-plugins=NodeRestriction
    - --enable-bootstrap-token-auth=true
    - --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt
    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt
    - --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key
    - --etcd-servers=https://127.0.0.1:2379
    - --kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt
    - --secure-port=6443
    - --service-account-issuer=https://kubernetes.default.svc.cluster.local
    - --service-cluster-ip-range=10.96.0.0/12
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key
    volumeMounts:
    - {mountPath: /etc/kubernetes/pki, name: k8s-certs, readOnly: true}
status:
  phase: Running
  hostIP: 10.0.0.11
  podIP: 10.0.0.11
"""


def pod(node: str, ip: str, servers: str = "https://127.0.0.1:2379") -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(MIRROR_POD.replace("10.0.0.11", ip).replace("cp-1", node))
    doc["spec"]["containers"][0]["command"] = [
        a if not a.startswith("--etcd-servers=") else f"--etcd-servers={servers}"
        for a in doc["spec"]["containers"][0]["command"]]
    return doc


def test_the_apiservers_flags_are_parsed_in_both_spellings() -> None:
    flags = apiserver_flags({"spec": {"containers": [{"name": "kube-apiserver", "command": ["kube-apiserver"],
                                                      "args": ["--etcd-servers", "https://e:2379", "--v=2",
                                                               "--profiling"]}]}})
    assert flags == {"--etcd-servers": "https://e:2379", "--v": "2", "--profiling": "true"}


def test_a_stacked_control_plane_gives_one_endpoint_per_node_from_loopback() -> None:
    found = etcd_flags([pod("cp-1", "10.0.0.11"), pod("cp-2", "10.0.0.12"), pod("cp-3", "10.0.0.13")])
    assert found.endpoints == ("https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379")
    assert (found.ca, found.cert, found.key) == ("/etc/kubernetes/pki/etcd/ca.crt",
                                                  "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                                                  "/etc/kubernetes/pki/apiserver-etcd-client.key")
    assert found.nodes == ("cp-1", "cp-2", "cp-3")


def test_external_etcd_endpoints_are_kept_as_listed() -> None:
    servers = "https://10.0.1.1:2379,https://10.0.1.2:2379"
    found = etcd_flags([pod("cp-1", "10.0.0.11", servers), pod("cp-2", "10.0.0.12", servers)])
    assert found.endpoints == ("https://10.0.1.1:2379", "https://10.0.1.2:2379")


def test_no_apiserver_pod_or_no_flags_is_an_error_that_says_what_to_give() -> None:
    with pytest.raises(TargetError, match="not a kubeadm control plane.*spec.target.etcd"):
        etcd_flags([])
    bare = pod("cp-1", "10.0.0.11")
    bare["spec"]["containers"][0]["command"] = ["kube-apiserver", "--etcd-servers=https://127.0.0.1:2379"]
    with pytest.raises(TargetError, match="--etcd-cafile, --etcd-certfile, --etcd-keyfile"):
        etcd_flags([bare])


class Api:
    server = "https://10.0.0.10:6443"

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        assert path == "/api/v1/namespaces/kube-system/pods" and params == {"labelSelector": "component=kube-apiserver"}
        return {"items": [pod("cp-1", "10.0.0.11"), pod("cp-2", "10.0.0.12")]}


def test_the_kubeconfig_target_needs_the_files_where_chaoslab_runs(tmp_path: Path) -> None:
    assert discover(Api()).endpoints == ("https://10.0.0.11:2379", "https://10.0.0.12:2379")
    with pytest.raises(TargetError, match=r"on cp-1, cp-2, not here: ca /etc/kubernetes/pki/etcd/ca.crt;.* not found"):
        discovered_etcd(Api(), {"discover": "kubeadm"}, exists=lambda p: False)  # type: ignore[arg-type]
    copies = {k: tmp_path / f"{k}.pem" for k in ("ca", "cert", "key")}
    for f in copies.values():
        f.write_text("x")
    access = discovered_etcd(Api(), {"discover": "kubeadm", **{k: str(v) for k, v in copies.items()}})  # type: ignore[arg-type]
    assert access.endpoints == ("https://10.0.0.11:2379", "https://10.0.0.12:2379")
    assert access.tls.key == copies["key"]


def test_the_ssh_target_fetches_the_files_into_a_private_directory(tmp_path: Path) -> None:
    ran: list[tuple[str, tuple[str, ...]]] = []

    class Host:
        def run_on(self, host: str, argv: Any, *, check: bool = True) -> str:
            ran.append((host, tuple(argv)))
            return f"-----BEGIN {argv[-1]}-----\n"

    got = fetch_tls(Host(), "cp-1", etcd_flags([pod("cp-1", "10.0.0.11")]), tmp_path / "tls")
    assert ran[0] == ("cp-1", ("cat", "--", "/etc/kubernetes/pki/etcd/ca.crt"))
    assert got["key"].read_text().startswith("-----BEGIN /etc/kubernetes/pki/apiserver-etcd-client.key")
    assert got["key"].stat().st_mode & 0o777 == 0o600 and (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
