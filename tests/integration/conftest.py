"""One real lab for the whole integration session, with its own name and ports so it never touches a
lab a developer has running. Short node timings keep the node-lifecycle tests quick.

`CHAOSLAB_TEST_LAB` and `CHAOSLAB_TEST_PORT_BASE` (default `itest`, 17443) let two checkouts run their
suites side by side; `CHAOSLAB_TEST_PROFILE=small` (one apiserver) saves CPU for tests that do not need HA."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from waiting import etcd_leaders, eventually

from chaoslab.clients.etcd import RpcError
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import TargetError
from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.install import find_binaries
from chaoslab.lab.lifecycle import down, up
from chaoslab.targets.lab import LabTarget

TEST_LAB = LabConfig(name=os.environ.get("CHAOSLAB_TEST_LAB", "itest"),
                     port_base=int(os.environ.get("CHAOSLAB_TEST_PORT_BASE", "17443")), nodes=3, node_lease_seconds=20, node_monitor_grace=20,
                     pod_eviction_timeout=20,
                     # A small etcd quota, so the etcd-nospace tests fill it in seconds (the suite's own
                     # data stays far below it; the apiserver compacts every 5 minutes).
                     etcd_quota_bytes=64 << 20,
                     profile="small" if os.environ.get("CHAOSLAB_TEST_PROFILE") == "small" else "ha")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabLayout]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    layout = LabLayout(TEST_LAB)
    down(layout)  # a lab left by an interrupted earlier session
    try:
        yield up(TEST_LAB, find_binaries(), timeout=180)
    finally:
        left = down(layout)
        assert not left, f"lab down left {left}"


@pytest.fixture(scope="session")
def api(lab: LabLayout) -> KubeApi:
    return KubeApi.from_kubeconfig(lab.kubeconfig)


@pytest.fixture
def target(lab: LabLayout) -> LabTarget:
    return LabTarget(lab)


@pytest.fixture(autouse=True)
def settled(request: pytest.FixtureRequest) -> None:
    """Before each test on the shared lab: every etcd member answers and names the same leader, and the
    apiserver is ready, so no test inherits an election or a restart that the test before it caused."""
    if "lab" not in request.fixturenames:
        return
    target = LabTarget(request.getfixturevalue("lab"))
    api: KubeApi = request.getfixturevalue("api")

    def healthy() -> bool:
        try:
            leaders = etcd_leaders(target)
        except RpcError:
            return False
        if len(leaders) != 1 or None in leaders:
            return False
        try:
            return api.request("GET", "/readyz", timeout=3).status_code == 200
        except TargetError:
            return False

    eventually(healthy, 90, "the lab settled (one etcd leader named by every member, apiserver ready)")
