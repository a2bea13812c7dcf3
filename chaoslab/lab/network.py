"""The lab's network: one Linux network namespace per control-plane host, joined by a bridge that lives in
a namespace of its own, so the lab never puts an address on the machine's real interfaces.

    root namespace (loopback only)           chaoslab-<lab>-net            chaoslab-<lab>-cpN
    haproxy 127.0.0.1:16443 ──(namespace)──────────────────────────────▶ eth0 10.213.0.1N
                                              br0 ── cpN ◀── veth ──▶ eth0
                                              10.213.0.3 (service address: chaoslab's webhook servers)

haproxy reaches the hosts with its per-server `namespace` keyword: it opens the connection from inside the
host's namespace. From there every connection would come from the host's own address, indistinguishable
from the host's own processes, so haproxy binds them to the lab's client address (`source`, 10.213.0.2 by
default), which sits on `lo` in every host namespace: a packet filter in the host tells its clients apart
as it would on a real host, where they come from other machines. Faults (partitions, netem) put their rules
inside the host namespaces, where they vanish with the namespace. Called by `chaoslab.lab.up`/`down`;
needs root.
"""

from __future__ import annotations

from pathlib import Path

from chaoslab.errors import LabError
from chaoslab.lab.config import Host, LabLayout
from chaoslab.lab.system import run

BRIDGE = "br0"
HOST_DEVICE = "eth0"
"""Every host's one interface, toward the bridge."""
NETNS_DIR = Path("/var/run/netns")


def namespaces(layout: LabLayout) -> list[str]:
    """Every namespace this lab owns."""
    return [layout.switch_netns, *(h.netns for h in layout.hosts)]


def existing(layout: LabLayout) -> list[str]:
    """The lab's namespaces that exist now."""
    return [ns for ns in namespaces(layout) if (NETNS_DIR / ns).exists()]


def in_host(host: Host, *argv: str) -> list[str]:
    """A command line that runs `argv` inside a host's network namespace."""
    return ["ip", "netns", "exec", host.netns, *argv]


def create(layout: LabLayout) -> None:
    """Create the namespaces, the bridge and one veth pair per host. Refuses if any already exists."""
    if present := existing(layout):
        raise LabError(
            f"network namespaces {', '.join(present)} already exist: lab {layout.config.name!r} is up or was "
            f"not torn down; run `chaoslab lab down --name {layout.config.name}`"
        )
    sw = layout.switch_netns
    try:
        run(["ip", "netns", "add", sw])
        run(["ip", "-n", sw, "link", "set", "lo", "up"])
        run(["ip", "-n", sw, "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", BRIDGE, "up"])
        # The service address (see `LabLayout.service_address`): a webhook chaoslab runs listens here.
        run(["ip", "-n", sw, "addr", "add", f"{layout.service_address}/{layout.prefix_len}", "dev", BRIDGE])
        for host in layout.hosts:
            ns = host.netns
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # haproxy's source address in this host (see the module docstring).
            run(["ip", "-n", ns, "addr", "add", f"{layout.client_address}/32", "dev", "lo"])
            run(["ip", "-n", ns, "link", "add", HOST_DEVICE, "type", "veth", "peer", "name", host.name, "netns", sw])
            run(["ip", "-n", ns, "addr", "add", f"{host.address}/{layout.prefix_len}", "dev", HOST_DEVICE])
            run(["ip", "-n", ns, "link", "set", HOST_DEVICE, "up"])
            run(["ip", "-n", sw, "link", "set", host.name, "master", BRIDGE])
            run(["ip", "-n", sw, "link", "set", host.name, "up"])
    except LabError:
        destroy(layout)
        raise


def destroy(layout: LabLayout) -> None:
    """Delete every namespace of the lab (their links and rules go with them). Safe to call twice."""
    for ns in existing(layout):
        run(["ip", "netns", "del", ns], check=False)
