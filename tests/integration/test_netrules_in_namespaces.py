"""chaoslab.faults.netrules against real network namespaces of its own (`chaoslab-h4-*`): three hosts on a bridge,
each with a TCP listener on 2379 and 2380 and a UDP receiver that logs what arrives. Needs root; never
touches a lab's namespaces."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from chaoslab.faults.netrules import (
    Command,
    Endpoint,
    Netem,
    Partition,
    cancel_dead_mans_switch,
    chain_name,
    dead_mans_switch,
    degrade_commands,
    heal_degrade,
    heal_partition,
    in_netns,
    isolate,
    leftovers,
    one_way,
    partition_commands,
    split,
    wrap,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and iptables need root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("ip", "iptables", "iptables-restore", "tc", "setsid",
                                                             "pkill")),
                       reason="needs ip, iptables, iptables-restore, tc, setsid and pkill"),
]

TAG = "h4test"
SWITCH = "chaoslab-h4-net"
HOSTS = {"a": "10.254.0.11", "b": "10.254.0.12", "c": "10.254.0.13"}
UDP_PORT = 9999

SERVER = f"""
import socket, sys, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    while True:
        s.accept()[0].close()
for port in (2379, 2380):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", {UDP_PORT}))
with open(sys.argv[1], "a", buffering=1) as log:
    while True:
        log.write(u.recvfrom(256)[0].decode() + "\\n")
"""

# argv: timeout ADDR:PORT... → {"ADDR:PORT": ["open" | "refused" | "blocked", seconds]}
CONNECT = """
import concurrent.futures, json, socket, sys, time
def probe(target):
    addr, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(float(sys.argv[1]))
    t0 = time.monotonic()
    try:
        s.connect((addr, int(port)))
        return "open", time.monotonic() - t0
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t0
    except OSError:
        return "blocked", time.monotonic() - t0
    finally:
        s.close()
with concurrent.futures.ThreadPoolExecutor(32) as pool:
    print(json.dumps(dict(zip(sys.argv[2:], pool.map(probe, sys.argv[2:])))))
"""

SEND_UDP = """
import socket, sys
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
except OSError:
    pass  # EPERM when OUTPUT drops it
"""


# chaoslab's stand-in: runs argv (the switch) like any command, says so, and hangs until it is killed.
STAND_IN = """
import subprocess, sys, time
subprocess.run(sys.argv[1:], check=True, capture_output=True, timeout=5)
print("armed", flush=True)
time.sleep(600)
"""


def ns(host: str) -> str:
    return f"chaoslab-h4-{host}"


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30, input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def execute(commands: Iterable[Command]) -> None:
    """What a target does with generated commands: stop at a failure unless the command may fail."""
    for c in commands:
        sh(*c.argv, check=not c.may_fail, stdin=c.stdin)


def ep(host: str) -> Endpoint:
    return Endpoint(host, HOSTS[host])


def install(partition: Partition) -> None:
    for host, cmds in partition_commands(TAG, partition).items():
        execute(wrap(cmds, in_netns(ns(host))))


def heal(hosts: Iterable[str] = HOSTS) -> None:
    for host in hosts:
        execute(wrap(heal_partition(TAG), in_netns(ns(host))))


def chain_left(host: str) -> list[str]:
    return leftovers(TAG, sh("ip", "netns", "exec", ns(host), "iptables", "-w", "-S").stdout)


def connect(src: str, dsts: Iterable[str], ports: Iterable[int] = (2379, 2380),
            timeout: float = 1.0) -> dict[tuple[str, int], tuple[str, float]]:
    targets = [f"{HOSTS[d]}:{p}" for d in dsts for p in ports]
    out = sh("ip", "netns", "exec", ns(src), sys.executable, "-c", CONNECT, str(timeout), *targets).stdout
    by_addr = {a: h for h, a in HOSTS.items()}
    return {(by_addr[t.rsplit(":", 1)[0]], int(t.rsplit(":", 1)[1])): (r[0], r[1])
            for t, r in json.loads(out).items()}


def reach(src: str, dst: str, port: int | None = None) -> bool:
    """True if every probed port of dst accepts a TCP connection from src."""
    results = connect(src, [dst], [port] if port else (2379, 2380))
    return all(state == "open" for state, _ in results.values())


def blocked(src: str, dst: str, port: int | None = None) -> bool:
    results = connect(src, [dst], [port] if port else (2379, 2380))
    return all(state == "blocked" for state, _ in results.values())


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Namespaces a, b, c on a bridge in chaoslab-h4-net, each running SERVER; yields the log directory."""
    names = [SWITCH, *(ns(h) for h in HOSTS)]
    for name in names:  # left by an interrupted earlier run
        sh("ip", "netns", "del", name, check=False)
    logs = tmp_path_factory.mktemp("udp")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        sh("ip", "netns", "add", SWITCH)
        sh("ip", "-n", SWITCH, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", SWITCH, "link", "set", "br0", "up")
        for host, address in HOSTS.items():
            sh("ip", "netns", "add", ns(host))
            sh("ip", "-n", ns(host), "link", "set", "lo", "up")
            sh("ip", "-n", ns(host), "link", "add", "eth0", "type", "veth", "peer", "name", f"h4{host}",
               "netns", SWITCH)
            sh("ip", "-n", ns(host), "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", ns(host), "link", "set", "eth0", "up")
            sh("ip", "-n", SWITCH, "link", "set", "dev", f"h4{host}", "master", "br0")
            sh("ip", "-n", SWITCH, "link", "set", "dev", f"h4{host}", "up")
            servers.append(subprocess.Popen(["ip", "netns", "exec", ns(host), sys.executable, "-c", SERVER,
                                             str(logs / f"{host}.log")]))
        deadline = time.monotonic() + 10
        while not all(reach(s, d) for s in HOSTS for d in HOSTS if s != d):
            assert time.monotonic() < deadline, "the test network did not come up"
            time.sleep(0.2)
        yield logs
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for name in names:
            sh("ip", "netns", "del", name, check=False)
        assert not any(Path("/var/run/netns", name).exists() for name in names)


@pytest.fixture(autouse=True)
def healed(net: Path) -> Iterator[None]:
    """Every test ends with no rules and no qdisc; a test that forgot to heal is reported."""
    yield
    left = {h: chain_left(h) for h in HOSTS}
    heal()
    for host in HOSTS:
        execute(wrap(heal_degrade("eth0"), in_netns(ns(host))))
    assert left == {h: [] for h in HOSTS}, "the test left rules behind"


def udp_arrives(net: Path, src: str, dst: str) -> bool:
    word = f"{src}-to-{dst}-{uuid.uuid4().hex[:8]}"
    sh("ip", "netns", "exec", ns(src), sys.executable, "-c", SEND_UDP, HOSTS[dst], str(UDP_PORT), word)
    time.sleep(0.3)
    log = net / f"{dst}.log"
    return log.exists() and word in log.read_text().split()


# ---- partitions ----------------------------------------------------------------------------------------


def test_isolate_blocks_both_ways_holds_from_either_side_and_heals_without_a_trace(net: Path) -> None:
    install(isolate(ep("a"), [ep("b"), ep("c")]))
    for other in ("b", "c"):
        assert blocked("a", other) and blocked(other, "a")
    assert reach("b", "c") and reach("c", "b")
    assert chain_left("a") and chain_left("b")

    heal(["a"])  # a's rules gone: b and c still drop everything to and from a
    assert blocked("a", "b") and blocked("b", "a")

    heal()
    heal()  # again, on hosts without the chain: heal is idempotent
    assert all(reach(s, d) for s in HOSTS for d in HOSTS if s != d)
    assert {h: chain_left(h) for h in HOSTS} == {"a": [], "b": [], "c": []}


def test_installing_a_tag_that_is_in_place_fails(net: Path) -> None:
    install(isolate(ep("a"), [ep("b")]))
    with pytest.raises(AssertionError, match="Chain already exists"):
        install(isolate(ep("a"), [ep("b")]))
    heal()


def test_a_failed_transaction_leaves_nothing_behind(net: Path) -> None:
    """iptables-restore commits all of a host's rules or none: a bad last line undoes the lines before it."""
    (install,) = partition_commands(TAG, isolate(ep("a"), [ep("b")]))["a"]
    broken = install.stdin.replace("COMMIT\n", f"-A {chain_name(TAG)} -j NO-SUCH-TARGET\nCOMMIT\n")  # type: ignore[union-attr]
    proc = sh(*in_netns(ns("a"))(install.argv), stdin=broken, check=False)
    assert proc.returncode != 0 and "line" in proc.stderr, proc.stderr
    assert chain_left("a") == [] and reach("a", "b")


def test_an_observer_sees_none_or_all_of_a_hosts_rules_never_part(net: Path) -> None:
    """The flake of issue 14: a test (or a packet) saw the chain before its rules. Installed as one transaction,
    a big chain (1,000 rules) is never seen half-built by a listing running alongside, however often it looks."""
    partition = isolate(ep("a"), [ep("b")], ports=range(1, 501))
    (install,) = partition_commands(TAG, partition)["a"]
    whole = len(install.stdin.splitlines()) - 2  # type: ignore[union-attr]  # the -N, -A and -I lines
    seen: list[tuple[str, str, int]] = []
    phase = "heal"
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            start = phase
            count = len(chain_left("a"))
            seen.append((start, phase, count))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(5):
            phase = "install"
            execute(wrap([install], in_netns(ns("a"))))
            phase = "hold"
            time.sleep(0.3)
            phase = "heal"
            execute(wrap(heal_partition(TAG), in_netns(ns("a"))))
            time.sleep(0.1)
    finally:
        stop.set()
        watcher.join()
    # Heal goes step by step (unhook, flush, delete; each may fail): a look that overlaps it may see part of it.
    installing = [n for start, end, n in seen if "heal" not in (start, end)]
    assert whole in installing, sorted(set(seen))
    assert set(installing) <= {0, whole}, sorted(set(installing))


def test_split_blocks_across_groups_but_not_within(net: Path) -> None:
    install(split([[ep("a"), ep("b")], [ep("c")]]))
    assert reach("a", "b") and reach("b", "a")
    for near in ("a", "b"):
        assert blocked(near, "c") and blocked("c", near)
    heal()


def test_one_way_lets_datagrams_through_forward_and_breaks_tcp_both_ways(net: Path) -> None:
    install(one_way([ep("a")], [ep("b")]))  # a can send to b, b cannot send to a
    assert udp_arrives(net, "a", "b")
    assert not udp_arrives(net, "b", "a")
    assert blocked("a", "b") and blocked("b", "a")  # a's SYN reaches b; b's SYN-ACK is dropped
    assert reach("a", "c") and reach("c", "b")
    heal()
    assert udp_arrives(net, "b", "a")


def test_port_restricted_partition_blocks_only_that_port(net: Path) -> None:
    install(isolate(ep("a"), [ep("b"), ep("c")], ports=[2380]))
    for other in ("b", "c"):
        assert blocked("a", other, 2380) and blocked(other, "a", 2380)
        assert reach("a", other, 2379) and reach(other, "a", 2379)
    assert udp_arrives(net, "b", "a")
    heal()
    assert reach("a", "b", 2380) and reach("b", "a", 2380)


# ---- degradation ---------------------------------------------------------------------------------------


def kernel_has(*qdisc: str) -> bool:
    proc = sh("ip", "netns", "exec", ns("c"), "tc", "qdisc", "replace", "dev", "lo", "root", *qdisc, check=False)
    sh("ip", "netns", "exec", ns("c"), "tc", "qdisc", "del", "dev", "lo", "root", check=False)
    return proc.returncode == 0


def test_tc_parses_the_generated_commands_even_where_the_kernel_lacks_them(net: Path) -> None:
    """tc rejects bad syntax itself (exit 1, "Usage"/"What is"); the kernel's refusals come after parsing."""
    for toward in ([], [ep("b"), ep("c")]):
        for c in wrap(degrade_commands("eth0", Netem(200, 50, 5), toward), in_netns(ns("a"))):
            proc = sh(*c.argv, check=False)
            assert proc.returncode in (0, 2), proc.stderr
            assert not any(w in proc.stderr for w in ("Usage", "What is", "Illegal")), proc.stderr
        execute(wrap(heal_degrade("eth0"), in_netns(ns("a"))))
        execute(wrap(heal_degrade("eth0"), in_netns(ns("a"))))  # no qdisc left: still fine


def connect_time(src: str, dst: str) -> float:
    return min(t for _, t in connect(src, [dst], [2379] * 3, timeout=3).values())


def test_netem_delays_all_traffic_and_heals(net: Path) -> None:
    if not kernel_has("netem", "delay", "1ms"):
        pytest.skip("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)")
    base = connect_time("a", "b")
    execute(wrap(degrade_commands("eth0", Netem(delay_ms=200)), in_netns(ns("a"))))
    assert connect_time("a", "b") >= base + 0.18
    execute(wrap(heal_degrade("eth0"), in_netns(ns("a"))))
    assert connect_time("a", "b") < 0.1


def test_netem_toward_a_peer_leaves_other_peers_alone(net: Path) -> None:
    if not (kernel_has("netem", "delay", "1ms") and kernel_has("prio", "bands", "4")):
        pytest.skip("this kernel lacks the netem or prio qdisc (CONFIG_NET_SCH_NETEM, CONFIG_NET_SCH_PRIO)")
    execute(wrap(degrade_commands("eth0", Netem(delay_ms=200), toward=[ep("b")]), in_netns(ns("a"))))
    assert connect_time("a", "b") >= 0.18
    assert connect_time("a", "c") < 0.1
    execute(wrap(heal_degrade("eth0"), in_netns(ns("a"))))


# ---- dead-man's switch ---------------------------------------------------------------------------------


def switch_pids(marker: str) -> list[int]:
    """Processes whose command line is the switch's own (`sh -c SCRIPT MARKER`)."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if proc.name.isdigit() and argv[:2] == [b"sh", b"-c"] and argv[-1] == marker.encode():
            out.append(int(proc.name))
    return out


def alive_in_session(sid: int) -> list[int]:
    """Live (not zombie) processes of a session: the switch leads its own."""
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[4]) == sid:
            out.append(int(proc.name))
    return out


@pytest.fixture
def marker() -> Iterator[str]:
    m = f"chaoslab-h4-{uuid.uuid4().hex[:12]}"
    yield m
    for pid in switch_pids(m):  # only the switch this test armed
        os.kill(pid, signal.SIGTERM)


def all_heals() -> list[Command]:
    return [c for h in HOSTS for c in wrap(heal_partition(TAG), in_netns(ns(h)))]


def test_switch_heals_after_its_deadline_when_chaoslab_is_killed(net: Path, marker: str) -> None:
    install(isolate(ep("a"), [ep("b"), ep("c")]))
    deadline = 3
    # A stand-in for chaoslab: arms the switch, then hangs until it is SIGKILLed with its whole group.
    parent = subprocess.Popen([sys.executable, "-c", STAND_IN, *dead_mans_switch(all_heals(), deadline, marker)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert parent.stdout is not None and parent.stdout.readline() == "armed\n"
    armed = time.monotonic()
    os.killpg(parent.pid, signal.SIGKILL)
    parent.wait()
    time.sleep(0.3)  # until the switch's `sleep &` child has exec'd (it shares the sh command line before)
    [pid] = switch_pids(marker)
    assert blocked("a", "b") and chain_left("a")  # not before the deadline

    while chain_left("a") or chain_left("b") or chain_left("c"):
        assert time.monotonic() - armed < deadline + 5, "the switch did not heal"
        time.sleep(0.2)
    assert time.monotonic() - armed >= deadline - 0.5
    assert reach("a", "b") and reach("b", "a")
    time.sleep(0.5)
    assert switch_pids(marker) == [] and alive_in_session(pid) == []


def test_cancelled_switch_does_not_heal_and_leaves_no_process(net: Path, marker: str) -> None:
    install(isolate(ep("a"), [ep("b")]))
    sh(*dead_mans_switch(all_heals(), 2, marker))  # returns at once: setsid -f
    time.sleep(0.3)
    pids = switch_pids(marker)
    assert len(pids) == 1
    assert sh("pgrep", "-f", cancel_dead_mans_switch(marker).argv[-1]).stdout.split() == [str(pids[0])]
    execute([cancel_dead_mans_switch(marker)])
    time.sleep(0.3)
    assert switch_pids(marker) == []
    assert alive_in_session(pids[0]) == []  # its sleep went with it
    time.sleep(2.5)
    assert chain_left("a") and blocked("a", "b")  # past the deadline, still partitioned
    heal()
    execute([cancel_dead_mans_switch(marker)])  # nothing left to cancel: may fail, is fine
