from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.errors import TargetError
from chaoslab.faults.netrules import Endpoint
from chaoslab.lab.components import haproxy_config
from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.targets.lab import LabTarget


def test_clients_of_a_lab_host_are_its_load_balancer_address_and_take_no_rules(tmp_path: Path) -> None:
    layout = LabLayout(LabConfig(name="t", state_root=tmp_path))
    layout.state_dir.mkdir()
    layout.haproxy_config.write_text(haproxy_config(layout))
    assert LabTarget(layout).clients("cp2") == Endpoint("clients", "10.213.0.2", managed=False)


def test_a_lab_whose_load_balancer_has_no_client_address_is_refused(tmp_path: Path) -> None:
    layout = LabLayout(LabConfig(name="old", state_root=tmp_path))
    layout.state_dir.mkdir()
    layout.haproxy_config.write_text(haproxy_config(layout).replace(" source 10.213.0.2", ""))
    with pytest.raises(TargetError, match=r"cannot be cut; restart the lab \(`chaoslab lab down --name old`"):
        LabTarget(layout).clients("cp1")
    with pytest.raises(TargetError, match="has no host 'cp9'"):
        LabTarget(layout).clients("cp9")
