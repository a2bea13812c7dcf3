from pathlib import Path

from chaoslab.lab.config import LabConfig, LabLayout


def test_layout_derives_addresses_ports_and_namespaces() -> None:
    layout = LabLayout(LabConfig(name="demo", state_root=Path("/tmp/x")))
    assert [h.name for h in layout.hosts] == ["cp1", "cp2", "cp3"]
    assert [h.address for h in layout.hosts] == ["10.213.0.11", "10.213.0.12", "10.213.0.13"]
    assert layout.hosts[0].netns == "chaoslab-demo-cp1"
    assert layout.apiserver_url == "https://127.0.0.1:16443"
    assert layout.etcd_endpoints()["cp2"] == "https://127.0.0.1:16465"
    assert len(set(layout.ports)) == len(layout.ports)
    assert layout.state_dir == Path("/tmp/x/demo")


def test_small_profile_has_one_apiserver_that_every_host_uses() -> None:
    layout = LabLayout(LabConfig(profile="small"))
    assert [h.name for h in layout.apiserver_hosts] == ["cp1"]
    assert layout.local_apiserver_url(layout.host("cp3")) == "https://10.213.0.11:6443"


def test_problems_name_the_field_and_what_is_allowed() -> None:
    problems = LabConfig(name="Bad_Name", hosts=2, subnet="10.0.0.0/30", port_base=80).problems()
    assert any(p.startswith("name:") for p in problems)
    assert any("hosts: 2 is not one of 1, 3, 5" in p for p in problems)
    assert any(p.startswith("subnet:") for p in problems)
    assert any(p.startswith("port_base:") for p in problems)
    assert LabConfig().problems() == []


def test_five_hosts_get_distinct_addresses_and_ports_and_the_client_address_is_none_of_them() -> None:
    layout = LabLayout(LabConfig(hosts=5, subnet="10.50.0.0/24", port_base=20443))
    addresses = [h.address for h in layout.hosts]
    assert addresses == [f"10.50.0.1{i}" for i in range(1, 6)]
    assert layout.client_address == "10.50.0.2" and layout.client_address not in addresses
    assert len(set(layout.ports)) == len(layout.ports) == 11
    assert layout.etcd_client_port(layout.hosts[4]) == 20468
