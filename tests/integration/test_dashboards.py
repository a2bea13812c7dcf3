"""Every metric the dashboards query exists: chaoslab's own from its export list, the components' scraped
from the real lab — etcd through haproxy with the lab's client certificate, kube-apiserver with the admin
kubeconfig's certificate, kube-scheduler and kube-controller-manager on their secure ports inside a host's
network namespace (127.0.0.1:10259 and :10257, delegated authentication accepts the admin certificate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from chaoslab.lab.config import LabLayout
from chaoslab.ops import dashboards
from chaoslab.reports.prometheus import EXPORTED

SCRAPE = """
import sys, requests, urllib3
urllib3.disable_warnings()
r = requests.get(sys.argv[1], cert=(sys.argv[2], sys.argv[3]), verify=False, timeout=10)
r.raise_for_status()
sys.stdout.write(r.text)
"""


def names(exposition: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}


def scrape_in_host(lab: LabLayout, port: int) -> set[str]:
    """A component that listens on 127.0.0.1 inside its host's network namespace."""
    pki = lab.pki_dir
    out = subprocess.run(["ip", "netns", "exec", lab.hosts[0].netns, sys.executable, "-c", SCRAPE,
                          f"https://127.0.0.1:{port}/metrics", str(pki / "admin.crt"), str(pki / "admin.key")],
                         capture_output=True, text=True, timeout=60, check=True)
    return names(out.stdout)


@pytest.fixture(scope="module")
def component_metrics(lab: LabLayout) -> dict[str, set[str]]:
    pki = lab.pki_dir
    ca = str(pki / "ca.crt")
    etcd = requests.get(next(iter(lab.etcd_endpoints().values())) + "/metrics", verify=ca, timeout=10,
                        cert=(str(pki / "apiserver-etcd-client.crt"), str(pki / "apiserver-etcd-client.key")))
    etcd.raise_for_status()
    api = requests.get(lab.apiserver_url + "/metrics", verify=ca, timeout=30,
                       cert=(str(pki / "admin.crt"), str(pki / "admin.key")))
    api.raise_for_status()
    return {"etcd": names(etcd.text), "kube-apiserver": names(api.text),
            "kube-scheduler": scrape_in_host(lab, 10259), "kube-controller-manager": scrape_in_host(lab, 10257)}


def test_the_documented_component_metrics_are_exported_by_the_components(
        component_metrics: dict[str, set[str]]) -> None:
    for component, metrics in dashboards.COMPONENT_METRICS.items():
        missing = set(metrics) - component_metrics[component]
        assert not missing, f"{component} does not export {sorted(missing)}"


@pytest.mark.parametrize("path", dashboards.files(), ids=lambda p: p.name)
def test_every_dashboard_query_names_a_metric_that_exists(path: Path, component_metrics: dict[str, set[str]]) -> None:
    exported = set(EXPORTED).union(*component_metrics.values())
    for where, expr in dashboards.queries(dashboards.load(path)):
        unknown = dashboards.metric_names(expr) - exported
        assert not unknown, f"{path} {where}: no component or chaoslab exports {sorted(unknown)}"
