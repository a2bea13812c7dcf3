"""Network fault rules as command lines: partitions as iptables rules, degradation as `tc netem` (or, on
kernels without netem, iptables NFQUEUE rules feeding `chaoslab.faults.delayer`), the commands that heal them, and a dead-man's switch that heals even if chaoslab dies. Pure: nothing here runs a
command. Faults (`partition`, `network-degrade`) build the commands; a target runs them where the host is —
in a lab namespace today, over SSH or in a privileged pod later — by wrapping each argv (`in_netns`).

    >>> cp1, cp2, cp3 = (Endpoint(f"cp{i}", f"10.213.0.1{i}") for i in (1, 2, 3))
    >>> (install,) = partition_commands("run7", isolate(cp1, [cp2, cp3], ports=[2380]))["cp2"]
    >>> install.argv
    ('iptables-restore', '-w', '--noflush')
    >>> print(install.stdin, end="")
    *filter
    -N CHAOSLAB-run7
    -A CHAOSLAB-run7 -s 10.213.0.11 -p tcp --dport 2380 -j DROP
    -A CHAOSLAB-run7 -d 10.213.0.11 -p tcp --dport 2380 -j DROP
    -I INPUT -j CHAOSLAB-run7
    -I OUTPUT -j CHAOSLAB-run7
    COMMIT
    >>> wrap(heal_partition("run7"), in_netns("chaoslab-lab-cp2"))[0].argv[:5]
    ('ip', 'netns', 'exec', 'chaoslab-lab-cp2', 'iptables')

A partition is a set of blocked directed flows (src host → dst host, optionally only TCP to some destination
ports). Every host of a flow gets one chain, `CHAOSLAB-<tag>`, hooked first in INPUT and OUTPUT; the source
drops what it sends to the destination (`-d`), the destination drops what arrives from the source (`-s`), so
the partition holds whichever side is looked at. One chain serves both hooks: INPUT only sees packets for a
local address and OUTPUT only packets from one, so `-d PEER` can only match going out and `-s PEER` coming in.
Packets are dropped (`-j DROP`), never rejected: a real partition is silence, not a refusal.

A host's part of a fault (`Chain`: the chain, its rules, its hooks) goes in as one `iptables-restore
--noflush` transaction, fed on stdin: the kernel (nf_tables or legacy) commits it whole or not at all, so
neither a packet nor an observer ever sees a chain without its rules or a hook before its chain, and a
failed install leaves nothing to heal on that host. `--noflush` keeps every other rule; `-N` fails the
transaction if the chain exists (that tag is in place already); `-w` waits for the xtables lock as
`iptables -w` does. Heal stays one `iptables` command per step, each allowed to fail, so it can be run
again, and on a host that never got the rules.

Every command is an argument list built from validated pieces, never a shell string (the one `sh -c`
script, the dead-man's switch, says in `dead_mans_switch` why it is safe)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaoslab.clients.hosts import Argv, Command, Endpoint, Wrap, in_netns, on_host, wrap

__all__ = [
    "Chain", "Command", "Endpoint", "Flow", "Netem", "Partition", "Wrap", "cancel_dead_mans_switch", "chain_name",
    "dead_mans_switch", "degrade_commands", "delayer_command", "delayer_pattern", "heal_degrade",
    "heal_partition", "in_netns", "isolate", "leftovers", "loss_commands", "nfqueue_commands", "on_host",
    "one_way", "partition_chains", "partition_commands", "ruled_hosts", "split", "stop_delayer", "wrap",
]

_TAG = re.compile(r"^[A-Za-z0-9-]{1,19}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$")
_MARKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_./:%,=+@-]+$")


# ---- partitions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """Traffic from `src` to `dst` that is dropped: all of it, or only TCP to one of `ports` on `dst`."""

    src: Endpoint
    dst: Endpoint
    ports: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.src.host == self.dst.host:
            raise ValueError(f"flow from {self.src.host!r} to itself")
        if not (self.src.managed or self.dst.managed):
            raise ValueError(f"flow {self.src.host!r} -> {self.dst.host!r}: neither end takes rules")
        if _ports(self.ports) != self.ports:
            raise ValueError(f"ports {self.ports}: give them sorted, without repeats")


Partition = frozenset[Flow]
"""Blocked flows; partitions combine with `|`."""


def _ports(ports: Iterable[int] | None) -> tuple[int, ...] | None:
    if ports is None:
        return None
    out = tuple(sorted(set(ports)))
    if not out or any(isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535 for p in out):
        raise ValueError(f"ports {list(out)}: give TCP ports 1-65535, or None for all traffic")
    return out


def _between(srcs: Iterable[Endpoint], dsts: Iterable[Endpoint], ports: tuple[int, ...] | None) -> Partition:
    dsts = list(dsts)
    return frozenset(Flow(s, d, ports) for s in srcs for d in dsts if s.host != d.host)


def _disjoint(groups: Sequence[Sequence[Endpoint]]) -> None:
    seen: dict[str, int] = {}
    for i, group in enumerate(groups):
        if not group:
            raise ValueError(f"group {i} is empty")
        for e in group:
            if seen.setdefault(e.host, i) != i:
                raise ValueError(f"host {e.host!r} is in group {seen[e.host]} and group {i}")


def isolate(one: Endpoint, others: Iterable[Endpoint], ports: Iterable[int] | None = None) -> Partition:
    """`one` cannot reach `others` and they cannot reach it; they still reach each other."""
    p, others = _ports(ports), list(others)
    if not [o for o in others if o.host != one.host]:
        raise ValueError(f"isolate {one.host!r} from no other host")
    return _between([one], others, p) | _between(others, [one], p)


def split(groups: Sequence[Sequence[Endpoint]], ports: Iterable[int] | None = None) -> Partition:
    """Hosts reach their own group only, e.g. `split([[cp1], [cp2, cp3]])`: minority and majority."""
    if len(groups) < 2:
        raise ValueError(f"split into {len(groups)} group(s): give at least two")
    _disjoint(groups)
    p = _ports(ports)
    return frozenset(flow for i, a in enumerate(groups) for j, b in enumerate(groups) if i != j
                     for flow in _between(a, b, p))


def one_way(src_group: Sequence[Endpoint], dst_group: Sequence[Endpoint],
            ports: Iterable[int] | None = None) -> Partition:
    """`src_group` can send to `dst_group`, which cannot send back: every packet dst → src is dropped.

    TCP then fails both ways (a connection needs packets in both directions: the SYN-ACK back to a src
    host is lost), so only datagrams (UDP, ICMP requests) get through src → dst. With `ports`, only TCP to
    those ports on src hosts is dropped: dst hosts cannot connect to them, while src → dst connections on
    the same ports still work (their replies carry the port as source, not destination)."""
    _disjoint([src_group, dst_group])
    return _between(dst_group, src_group, _ports(ports))


def chain_name(tag: str) -> str:
    """The chain holding one fault's rules; `tag` tells concurrent faults apart (e.g. run id + index)."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValueError(f"tag {tag!r}: use 1-19 letters, digits or '-' (iptables chain names stop at 28)")
    return f"CHAOSLAB-{tag}"


def _iptables(*args: str, may_fail: bool = False) -> Command:
    return Command(("iptables", "-w", *args), may_fail)


RESTORE: Argv = ("iptables-restore", "-w", "--noflush")
"""Applies a transaction read on stdin, keeping every rule it does not name."""


@dataclass(frozen=True)
class Chain:
    """One fault's rules on one host: the chain `name`, its rules in order (each the iptables arguments
    after `-A NAME`), and the built-in chains that jump to it (hooked first, after the rules are in).

        >>> c = Chain("CHAOSLAB-t", (("-s", "10.0.0.1", "-j", "DROP"),), ("INPUT",))
        >>> print(c.restore(), end="")
        *filter
        -N CHAOSLAB-t
        -A CHAOSLAB-t -s 10.0.0.1 -j DROP
        -I INPUT -j CHAOSLAB-t
        COMMIT
    """

    name: str
    rules: tuple[Argv, ...]
    hooks: tuple[str, ...] = ("INPUT", "OUTPUT")

    def __post_init__(self) -> None:
        if not self.name.startswith("CHAOSLAB-") or not _TAG.match(self.name.removeprefix("CHAOSLAB-")):
            raise ValueError(f"chain {self.name!r}: build it with chain_name(tag)")
        if not self.rules:
            raise ValueError(f"chain {self.name}: no rules")
        if bad := [h for h in self.hooks if h not in ("INPUT", "OUTPUT", "FORWARD")]:
            raise ValueError(f"chain {self.name}: hooks {bad}: give INPUT, OUTPUT or FORWARD")
        # iptables-restore splits lines on white space and reads quotes and '#': no token may hold any.
        if bad := [t for rule in self.rules for t in rule if not _SAFE_TOKEN.match(t)]:
            raise ValueError(f"chain {self.name}: unsafe token(s) {bad} for iptables-restore")

    def restore(self) -> str:
        """The `iptables-restore --noflush` transaction that installs the chain, its rules and its hooks."""
        lines = ["*filter", f"-N {self.name}", *(f"-A {self.name} {' '.join(r)}" for r in self.rules),
                 *(f"-I {hook} -j {self.name}" for hook in self.hooks), "COMMIT"]
        return "\n".join(lines) + "\n"

    def install(self) -> Command:
        """The one command that installs it all, or nothing (fails if the chain exists)."""
        return Command(RESTORE, stdin=self.restore())


def _drops(match: tuple[str, str], ports: tuple[int, ...] | None) -> list[Argv]:
    if ports is None:
        return [(*match, "-j", "DROP")]
    return [(*match, "-p", "tcp", "--dport", str(p), "-j", "DROP") for p in ports]


def partition_chains(tag: str, partition: Partition) -> dict[str, Chain]:
    """Host → its part of `partition` as a chain, in host order. Endpoints that are not `managed` get no
    rules: their flows are cut on the managed end alone."""
    chain = chain_name(tag)
    rules: dict[str, list[Argv]] = {}
    for flow in sorted(partition, key=lambda f: (f.src.host, f.dst.host, f.ports or ())):
        if flow.src.managed:
            rules.setdefault(flow.src.host, []).extend(_drops(("-d", flow.dst.address), flow.ports))
        if flow.dst.managed:
            rules.setdefault(flow.dst.host, []).extend(_drops(("-s", flow.src.address), flow.ports))
    return {host: Chain(chain, tuple(dict.fromkeys(r))) for host, r in sorted(rules.items())}


def partition_commands(tag: str, partition: Partition) -> dict[str, tuple[Command, ...]]:
    """Host → the command that installs its part of `partition` in one transaction (`Chain.install`), in
    host order. It fails if the chain exists (that tag is in place already: heal it first), and then has
    changed nothing on that host.

        >>> lb = Endpoint("clients", "10.213.0.2", managed=False)
        >>> cp2 = Endpoint("cp2", "10.213.0.12")
        >>> sorted(partition_commands("t", isolate(cp2, [lb])))
        ['cp2']
    """
    return {host: (chain.install(),) for host, chain in partition_chains(tag, partition).items()}


def ruled_hosts(partition: Partition) -> list[str]:
    """The hosts `partition_commands` puts rules on (the ones to heal), sorted."""
    return sorted({e.host for f in partition for e in (f.src, f.dst) if e.managed})


def heal_partition(tag: str) -> tuple[Command, ...]:
    """Unhook, flush and delete the chain on one host. Every step may fail (already gone), so heal can be
    run again, and on a host that never got the rules."""
    chain = chain_name(tag)
    return (_iptables("-D", "INPUT", "-j", chain, may_fail=True),
            _iptables("-D", "OUTPUT", "-j", chain, may_fail=True),
            _iptables("-F", chain, may_fail=True),
            _iptables("-X", chain, may_fail=True))


def loss_commands(tag: str, host: Endpoint, peers: Iterable[Endpoint], percent: float,
                  ports: Iterable[int] | None = None) -> tuple[Command, ...]:
    """Commands for `host` alone that drop `percent` % of the packets it exchanges with `peers`, both ways
    (iptables `statistic`: each packet independently, like netem's loss, but needing no qdisc). With
    `ports`, only TCP packets from or to those ports count, either end: raft messages to a peer travel
    over connections either side dialled. One transaction (`Chain.install`); healed like a partition
    (`heal_partition(tag)`)."""
    if isinstance(percent, bool) or not 0 < percent <= 100:
        raise ValueError(f"loss {percent!r}: give a percentage above 0 and at most 100")
    chain, p = chain_name(tag), _ports(ports)
    addresses = sorted({e.address for e in peers if e.host != host.host})
    if not addresses:
        raise ValueError(f"loss on {host.host!r} toward no other host")
    drop = ("-m", "statistic", "--mode", "random", "--probability", f"{percent / 100:.4f}", "-j", "DROP")
    matches = [()] if p is None else [("-p", "tcp", f"--{end}port", str(port)) for port in p for end in "ds"]
    rules = tuple((side, a, *m, *drop) for a in addresses for side in ("-d", "-s") for m in matches)
    return (Chain(chain, rules).install(),)


def leftovers(tag: str, listing: str) -> list[str]:
    """Lines of `iptables -w -S` output that still mention the tag's chain; empty once healed."""
    chain = chain_name(tag)
    return [line for line in listing.splitlines() if chain in line.split()]


# ---- degradation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Netem:
    """What `network-degrade` adds to a host's outgoing packets."""

    delay_ms: int = 0
    """Added one-way delay in milliseconds (default 0)."""
    jitter_ms: int = 0
    """Random variation of the delay in milliseconds, needs a delay (default 0). netem reorders packets
    whose delays cross."""
    loss_percent: float = 0.0
    """Share of packets dropped, 0-100 (default 0)."""

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0 or not 0 <= self.loss_percent <= 100:
            raise ValueError(f"{self}: delay and jitter must be >= 0 ms and loss 0-100 %")
        if self.jitter_ms and not self.delay_ms:
            raise ValueError(f"{self}: jitter needs a delay")
        if not (self.delay_ms or self.loss_percent):
            raise ValueError(f"{self}: set a delay or a loss, or there is nothing to degrade")

    def args(self) -> Argv:
        out: list[str] = ["netem"]
        if self.delay_ms:
            out += ["delay", f"{self.delay_ms}ms", *([f"{self.jitter_ms}ms"] if self.jitter_ms else [])]
        if self.loss_percent:
            out += ["loss", f"{self.loss_percent:g}%"]
        return tuple(out)


def _dev(dev: str) -> str:
    if not _IFNAME.match(dev):
        raise ValueError(f"interface {dev!r}: at most 15 letters, digits, '_', '.', '-'")
    return dev


def degrade_commands(dev: str, netem: Netem, toward: Iterable[Endpoint] = ()) -> tuple[Command, ...]:
    """Degrade what leaves `dev`: everything, or only packets to the `toward` peers. Replaces the root
    qdisc of `dev`; `heal_degrade` puts the kernel's default back (not a custom qdisc that was there).

    Toward peers: a 4-band prio qdisc whose default priomap only uses bands 1-3, netem on band 4, and one
    u32 filter per peer address sending its packets to band 4, so other traffic is untouched."""
    dev, peers = _dev(dev), sorted({e.address for e in toward})
    tc = ("tc", "qdisc", "replace", "dev", dev)
    if not peers:
        return (Command((*tc, "root", *netem.args())),)
    return (Command((*tc, "root", "handle", "1:", "prio", "bands", "4")),
            Command((*tc, "parent", "1:4", "handle", "40:", *netem.args())),
            *(Command(("tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1",
                       "u32", "match", "ip", "dst", f"{a}/32", "flowid", "1:4")) for a in peers))


def heal_degrade(dev: str) -> tuple[Command, ...]:
    """Delete the root qdisc (and with it netem, prio and filters); fails harmlessly if none is set."""
    return (Command(("tc", "qdisc", "del", "dev", _dev(dev), "root"), may_fail=True),)


# ---- delay without netem: NFQUEUE and chaoslab.faults.delayer -------------------------------------------------


def nfqueue_commands(tag: str, host: Endpoint, senders: Iterable[Endpoint], queue: int,
                     ports: Iterable[int] | None = None) -> tuple[Command, ...]:
    """Commands for `host` that hand the packets it receives from `senders` to netfilter queue `queue`,
    where a `chaoslab.faults.delayer` bound to it in the host's namespace holds them. `--queue-bypass`: with no
    delayer bound (not started yet, died, healed) the packets pass undelayed — the rules fail open. With
    `ports`, only TCP from or to those ports. Healed like a partition (`heal_partition(tag)`).

    Why on the receiving host (INPUT, `-s SENDER`) and not on the sender (OUTPUT, `-d PEER`), which would
    be netem's place: a packet held in the sender's OUTPUT hook still counts against its TCP socket, and
    TCP small queues then allow only about two packets per connection below TCP at a time, so a 200 ms
    delay there cut a bulk transfer to about 18 KB/s (64 KB in 3.7 s; 2 MB timed out); held at the
    receiver's INPUT the packet has left the sender, and the same transfer ran as over a 200 ms link (2 MB
    in 1.8 s). The delay of sender → host is the same either way.

        >>> cp1, cp2 = Endpoint("cp1", "10.213.0.11"), Endpoint("cp2", "10.213.0.12")
        >>> (install,) = nfqueue_commands("d0", cp2, [cp1], 12345)
        >>> print(install.stdin, end="")
        *filter
        -N CHAOSLAB-d0
        -A CHAOSLAB-d0 -s 10.213.0.11 -j NFQUEUE --queue-num 12345 --queue-bypass
        -I INPUT -j CHAOSLAB-d0
        COMMIT
    """
    chain, p = chain_name(tag), _ports(ports)
    _queue(queue)
    addresses = sorted({e.address for e in senders if e.host != host.host})
    if not addresses:
        raise ValueError(f"delay on {host.host!r} from no other host")
    divert = ("-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass")
    matches = [()] if p is None else [("-p", "tcp", f"--{end}port", str(port)) for port in p for end in "ds"]
    rules = tuple(("-s", a, *m, *divert) for a in addresses for m in matches)
    return (Chain(chain, rules, ("INPUT",)).install(),)


def _queue(queue: int) -> int:
    if isinstance(queue, bool) or not isinstance(queue, int) or not 0 <= queue <= 65535:
        raise ValueError(f"queue {queue!r}: give a netfilter queue number 0-65535")
    return queue


def delayer_command(python: Sequence[str], queue: int, netem: Netem, until: int, marker: str) -> Argv:
    """The command that starts a detached `chaoslab.faults.delayer` on queue `queue` (wrap it to run in the host's
    namespace): it returns once the queue is bound, or fails saying why, and the delayer exits by itself
    at Unix time `until`. `python` runs chaoslab's Python on the host (`Target.python`). Loss is not its
    job (see `loss_commands`)."""
    if not netem.delay_ms:
        raise ValueError(f"{netem}: the delayer needs a delay")
    if isinstance(until, bool) or not isinstance(until, int) or until < 1:
        raise ValueError(f"until {until!r}: give a Unix time in whole seconds")
    return (*python, "-m", "chaoslab.faults.delayer", "--queue", str(_queue(queue)), "--delay-ms", str(netem.delay_ms),
            "--jitter-ms", str(netem.jitter_ms), "--until", str(until), "--detach", "--marker", _marker(marker))


def delayer_pattern(marker: str) -> str:
    """A `pkill -f`/`pgrep -f` pattern matching the delayer started with `marker` and nothing else: anchored
    to its own command line (`PYTHON -m chaoslab.faults.delayer … --marker MARKER`), not a wrapper's."""
    return f"^[^ ]+ -m chaoslab[.]faults[.]delayer .* --marker {_marker(marker)}$"


def stop_delayer(marker: str) -> Command:
    """End the delayer: SIGTERM, on which it lets every held packet go first. May fail: it is gone
    already (exited at its deadline) or was never started."""
    return Command(("pkill", "-TERM", "-f", delayer_pattern(marker)), may_fail=True)


def _marker(marker: str) -> str:
    if not _MARKER.match(marker):
        raise ValueError(f"marker {marker!r}: use 1-64 letters, digits or '-'")
    return marker


# ---- dead-man's switch ---------------------------------------------------------------------------------


def dead_mans_switch(heal: Iterable[Command], deadline_s: int, marker: str) -> Argv:
    """A command that returns at once and leaves a detached process behind which runs `heal` after
    `deadline_s` seconds — even if chaoslab is SIGKILLed meanwhile — unless `cancel_dead_mans_switch(marker)`
    ends it first. Run it on the host (root namespace) with the heal commands already wrapped for where they
    apply; `marker` must be unique (e.g. `chaoslab-<run id>-<tag>`) and goes with the fault's undo data.

        setsid -f sh -c 'exec </dev/null >/dev/null 2>&1; trap ...; sleep 30 & p=$!; wait $p; \\
            ip netns exec chaoslab-lab-cp1 iptables -w -D INPUT -j CHAOSLAB-run7; ...' chaoslab-run7

    `setsid -f` forks into a session of its own, so neither chaoslab's death nor a signal to its process
    group (Ctrl-C) reaches it. Why the `sh -c` script is safe: its fixed parts are constants of this
    module, the deadline is an int, and every heal token must match a conservative character set (letters,
    digits, `_./:%,=+@-`, as every token this module builds does) and is quoted by `shlex.join` on top, so
    no token can end a word or start an expansion. The marker is `$0`, never part of the script."""
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, int) or deadline_s < 1:
        raise ValueError(f"deadline {deadline_s!r}: give whole seconds, at least 1")
    if not _MARKER.match(marker):
        raise ValueError(f"marker {marker!r}: use 1-64 letters, digits or '-'")
    lines = []
    for cmd in heal:
        if cmd.stdin is not None:
            raise ValueError(f"heal command {list(cmd.argv)} reads stdin; a dead-man's switch runs argv only")
        if bad := [t for t in cmd.argv if not _SAFE_TOKEN.match(t)]:
            raise ValueError(f"heal command {list(cmd.argv)}: unsafe token(s) {bad} for a dead-man's switch")
        lines.append(shlex.join(cmd.argv))
    if not lines:
        raise ValueError("dead-man's switch without heal commands")
    script = ("exec </dev/null >/dev/null 2>&1; trap 'kill $p 2>/dev/null; exit 0' TERM; "
              f"sleep {deadline_s} & p=$!; wait $p; " + "; ".join(lines))
    return ("setsid", "-f", "sh", "-c", script, marker)


def cancel_dead_mans_switch(marker: str) -> Command:
    """End the switch after a normal heal. The pattern is anchored to the switch's own command line
    (`sh -c … MARKER`), so it cannot hit a sudo or ssh wrapper that carries the marker as an argument. May
    fail: the switch has fired already, or was never armed."""
    if not _MARKER.match(marker):
        raise ValueError(f"marker {marker!r}: use 1-64 letters, digits or '-'")
    return Command(("pkill", "-TERM", "-f", f"^sh -c .* {marker}$"), may_fail=True)
