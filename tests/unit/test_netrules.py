from __future__ import annotations

import doctest
import re
import shlex

import pytest

from chaoslab.faults import netrules
from chaoslab.faults.netrules import (
    Command,
    Endpoint,
    Flow,
    Netem,
    cancel_dead_mans_switch,
    chain_name,
    dead_mans_switch,
    degrade_commands,
    delayer_command,
    delayer_pattern,
    heal_degrade,
    heal_partition,
    in_netns,
    isolate,
    leftovers,
    loss_commands,
    nfqueue_commands,
    on_host,
    one_way,
    partition_commands,
    ruled_hosts,
    split,
    stop_delayer,
    wrap,
)

CP1, CP2, CP3 = (Endpoint(f"cp{i}", f"10.213.0.1{i}") for i in (1, 2, 3))


def lines(commands: tuple[Command, ...]) -> list[str]:
    return [" ".join(c.argv) for c in commands]


def restored(commands: tuple[Command, ...]) -> list[str]:
    """The lines of the one `iptables-restore --noflush` transaction that installs a host's rules."""
    (install,) = commands
    assert install.argv == ("iptables-restore", "-w", "--noflush") and not install.may_fail
    assert install.stdin is not None
    text = install.stdin.splitlines()
    assert text[0] == "*filter" and text[-1] == "COMMIT" and install.stdin.endswith("COMMIT\n"), install.stdin
    return text[1:-1]


def flows(partition: frozenset[Flow]) -> set[tuple[str, str]]:
    return {(f.src.host, f.dst.host) for f in partition}


def test_public_api_is_pinned() -> None:
    assert sorted(netrules.__all__) == [
        "Chain", "Command", "Endpoint", "Flow", "Netem", "Partition", "Wrap", "cancel_dead_mans_switch",
        "chain_name", "dead_mans_switch", "degrade_commands", "delayer_command", "delayer_pattern", "heal_degrade",
        "heal_partition", "in_netns", "isolate", "leftovers", "loss_commands", "nfqueue_commands", "on_host",
        "one_way", "partition_chains", "partition_commands", "ruled_hosts", "split", "stop_delayer", "wrap",
    ]


def test_module_docstring_example_holds() -> None:
    assert doctest.testmod(netrules).failed == 0


# ---- partitions ----------------------------------------------------------------------------------------


def test_isolate_blocks_both_directions_between_one_and_the_others_only() -> None:
    assert flows(isolate(CP1, [CP2, CP3])) == {("cp1", "cp2"), ("cp2", "cp1"), ("cp1", "cp3"), ("cp3", "cp1")}


def test_isolate_from_nobody_is_refused() -> None:
    with pytest.raises(ValueError, match="no other host"):
        isolate(CP1, [CP1])


def test_split_blocks_across_groups_both_ways_but_not_within() -> None:
    assert flows(split([[CP1], [CP2, CP3]])) == {("cp1", "cp2"), ("cp2", "cp1"), ("cp1", "cp3"), ("cp3", "cp1")}
    assert flows(split([[CP1], [CP2], [CP3]])) == {(a, b) for a in ("cp1", "cp2", "cp3")
                                                     for b in ("cp1", "cp2", "cp3") if a != b}


@pytest.mark.parametrize(("groups", "message"), [
    ([[CP1, CP2]], "at least two"),
    ([[CP1], []], "group 1 is empty"),
    ([[CP1, CP2], [CP2, CP3]], "'cp2' is in group 0 and group 1"),
])
def test_split_refuses_groups_that_are_not_a_partition(groups: list[list[Endpoint]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split(groups)


def test_one_way_drops_only_what_the_receivers_send_back() -> None:
    assert flows(one_way([CP1], [CP2, CP3])) == {("cp2", "cp1"), ("cp3", "cp1")}


def test_ports_are_sorted_and_deduplicated_and_checked() -> None:
    assert {f.ports for f in isolate(CP1, [CP2], ports=[2380, 2379, 2380])} == {(2379, 2380)}
    for bad in ([], [0], [70000], [True]):
        with pytest.raises(ValueError, match="TCP ports 1-65535"):
            isolate(CP1, [CP2], ports=bad)


def test_endpoint_and_flow_are_validated() -> None:
    with pytest.raises(ValueError, match="'cp1': address '10.213.0.300' is not an IPv4 address"):
        Endpoint("cp1", "10.213.0.300")
    with pytest.raises(ValueError, match="to itself"):
        Flow(CP1, CP1)
    with pytest.raises(ValueError, match="sorted"):
        Flow(CP1, CP2, (2380, 2379))


@pytest.mark.parametrize("tag", ["", "a" * 20, "run 7", "x;y", "ünï", "a/b"])
def test_tags_that_would_break_the_chain_name_are_refused(tag: str) -> None:
    with pytest.raises(ValueError, match="1-19 letters, digits or '-'"):
        chain_name(tag)


def test_longest_tag_gives_a_chain_name_iptables_accepts() -> None:
    assert len(chain_name("a" * 19)) == 28


def test_isolate_installs_drops_on_both_ends_of_every_flow() -> None:
    rules = partition_commands("t1", isolate(CP1, [CP2, CP3]))
    assert {h: restored(c) for h, c in rules.items()} == {
        "cp1": ["-N CHAOSLAB-t1",
                "-A CHAOSLAB-t1 -d 10.213.0.12 -j DROP",
                "-A CHAOSLAB-t1 -d 10.213.0.13 -j DROP",
                "-A CHAOSLAB-t1 -s 10.213.0.12 -j DROP",
                "-A CHAOSLAB-t1 -s 10.213.0.13 -j DROP",
                "-I INPUT -j CHAOSLAB-t1",
                "-I OUTPUT -j CHAOSLAB-t1"],
        "cp2": ["-N CHAOSLAB-t1",
                "-A CHAOSLAB-t1 -s 10.213.0.11 -j DROP",
                "-A CHAOSLAB-t1 -d 10.213.0.11 -j DROP",
                "-I INPUT -j CHAOSLAB-t1",
                "-I OUTPUT -j CHAOSLAB-t1"],
        "cp3": ["-N CHAOSLAB-t1",
                "-A CHAOSLAB-t1 -s 10.213.0.11 -j DROP",
                "-A CHAOSLAB-t1 -d 10.213.0.11 -j DROP",
                "-I INPUT -j CHAOSLAB-t1",
                "-I OUTPUT -j CHAOSLAB-t1"],
    }
    assert not any(c.may_fail for cmds in rules.values() for c in cmds)


def test_unmanaged_clients_get_no_rules_and_are_cut_on_the_host_side_both_ways() -> None:
    lb = Endpoint("clients", "10.213.0.2", managed=False)
    partition = isolate(CP1, [CP2]) | isolate(CP1, [lb], ports=[2379])
    rules = partition_commands("t2", partition)
    assert sorted(rules) == ruled_hosts(partition) == ["cp1", "cp2"]
    assert {line for line in restored(rules["cp1"]) if "10.213.0.2 " in line + " "} == {
        "-A CHAOSLAB-t2 -d 10.213.0.2 -p tcp --dport 2379 -j DROP",
        "-A CHAOSLAB-t2 -s 10.213.0.2 -p tcp --dport 2379 -j DROP"}
    assert not [line for line in restored(rules["cp2"]) if "10.213.0.2 " in line + " "]


def test_a_flow_between_two_unmanaged_ends_is_refused() -> None:
    a, b = (Endpoint(n, f"10.0.0.{i}", managed=False) for i, n in ((1, "a"), (2, "b")))
    with pytest.raises(ValueError, match="neither end takes rules"):
        Flow(a, b)


def test_port_restricted_one_way_drops_tcp_to_those_ports_only() -> None:
    rules = partition_commands("peer", one_way([CP1], [CP2], ports=[2380, 2379]))
    assert restored(rules["cp2"])[1:3] == ["-A CHAOSLAB-peer -d 10.213.0.11 -p tcp --dport 2379 -j DROP",
                                        "-A CHAOSLAB-peer -d 10.213.0.11 -p tcp --dport 2380 -j DROP"]
    assert restored(rules["cp1"])[1:3] == ["-A CHAOSLAB-peer -s 10.213.0.12 -p tcp --dport 2379 -j DROP",
                                        "-A CHAOSLAB-peer -s 10.213.0.12 -p tcp --dport 2380 -j DROP"]


def test_overlapping_partitions_install_each_rule_once() -> None:
    rules = partition_commands("t", isolate(CP1, [CP2]) | one_way([CP2], [CP1]))
    assert restored(rules["cp1"]) == ["-N CHAOSLAB-t", "-A CHAOSLAB-t -d 10.213.0.12 -j DROP",
                                      "-A CHAOSLAB-t -s 10.213.0.12 -j DROP", "-I INPUT -j CHAOSLAB-t",
                                      "-I OUTPUT -j CHAOSLAB-t"]


def test_heal_unhooks_flushes_and_deletes_and_every_step_may_fail() -> None:
    heal = heal_partition("t1")
    assert lines(heal) == ["iptables -w -D INPUT -j CHAOSLAB-t1", "iptables -w -D OUTPUT -j CHAOSLAB-t1",
                           "iptables -w -F CHAOSLAB-t1", "iptables -w -X CHAOSLAB-t1"]
    assert all(c.may_fail for c in heal)


def test_leftovers_finds_the_chain_and_its_hooks_and_nothing_else() -> None:
    listing = ("-P INPUT ACCEPT\n-N CHAOSLAB-t1\n-N CHAOSLAB-t10\n-A INPUT -j CHAOSLAB-t1\n"
               "-A INPUT -j CHAOSLAB-t10\n-A CHAOSLAB-t1 -d 10.213.0.12/32 -j DROP\n")
    assert leftovers("t1", listing) == ["-N CHAOSLAB-t1", "-A INPUT -j CHAOSLAB-t1",
                                        "-A CHAOSLAB-t1 -d 10.213.0.12/32 -j DROP"]
    assert leftovers("t1", "-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n") == []


# ---- degradation ---------------------------------------------------------------------------------------


def test_netem_on_all_traffic_is_one_root_qdisc() -> None:
    cmds = degrade_commands("eth0", Netem(delay_ms=200, jitter_ms=50, loss_percent=5))
    assert lines(cmds) == ["tc qdisc replace dev eth0 root netem delay 200ms 50ms loss 5%"]
    assert Netem(loss_percent=0.5).args() == ("netem", "loss", "0.5%")


def test_netem_toward_peers_uses_a_fourth_prio_band_and_one_filter_per_peer() -> None:
    cmds = degrade_commands("eth0", Netem(delay_ms=100), toward=[CP3, CP2, CP3])
    assert lines(cmds) == [
        "tc qdisc replace dev eth0 root handle 1: prio bands 4",
        "tc qdisc replace dev eth0 parent 1:4 handle 40: netem delay 100ms",
        "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.213.0.12/32 flowid 1:4",
        "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.213.0.13/32 flowid 1:4",
    ]


def test_loss_drops_at_random_both_ways_on_the_degraded_host_only() -> None:
    cmds = restored(loss_commands("d1", CP1, [CP2, CP3, CP1], 25))
    stat = "-m statistic --mode random --probability 0.2500 -j DROP"
    assert cmds == [
        "-N CHAOSLAB-d1",
        f"-A CHAOSLAB-d1 -d {CP2.address} {stat}", f"-A CHAOSLAB-d1 -s {CP2.address} {stat}",
        f"-A CHAOSLAB-d1 -d {CP3.address} {stat}", f"-A CHAOSLAB-d1 -s {CP3.address} {stat}",
        "-I INPUT -j CHAOSLAB-d1", "-I OUTPUT -j CHAOSLAB-d1"]


def test_port_restricted_loss_matches_the_port_at_either_end() -> None:
    rules = [tuple(x.split()) for x in restored(loss_commands("d1", CP1, [CP2], 5, [2380])) if x.startswith("-A")]
    assert [r[r.index("-p"):r.index("-m")] for r in rules] == [
        ("-p", "tcp", "--dport", "2380"), ("-p", "tcp", "--sport", "2380")] * 2


@pytest.mark.parametrize("percent", [0, -1, 101, True])
def test_loss_outside_0_to_100_is_refused(percent: float) -> None:
    with pytest.raises(ValueError, match="percentage"):
        loss_commands("d1", CP1, [CP2], percent)
    with pytest.raises(ValueError, match="toward no other host"):
        loss_commands("d1", CP1, [CP1], 10)


def test_heal_degrade_deletes_the_root_qdisc_and_may_fail() -> None:
    assert heal_degrade("eth0") == (Command(("tc", "qdisc", "del", "dev", "eth0", "root"), may_fail=True),)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "nothing to degrade"),
    ({"jitter_ms": 10, "loss_percent": 1}, "jitter needs a delay"),
    ({"delay_ms": -1}, ">= 0 ms"),
    ({"loss_percent": 101}, "loss 0-100"),
])
def test_netem_refuses_meaningless_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Netem(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("dev", ["", "eth0 root", "a" * 16, "-x", "eth0;x"])
def test_interface_names_are_checked(dev: str) -> None:
    with pytest.raises(ValueError, match="interface"):
        heal_degrade(dev)


# ---- where commands run --------------------------------------------------------------------------------


def test_wrapping_runs_the_same_argv_in_a_namespace_and_keeps_may_fail() -> None:
    heal = heal_partition("t1")
    assert wrap(heal, on_host) == heal
    wrapped = wrap(heal, in_netns("chaoslab-lab-cp2"))
    assert wrapped[0] == Command(("ip", "netns", "exec", "chaoslab-lab-cp2", *heal[0].argv), may_fail=True)
    with pytest.raises(ValueError, match="network namespace"):
        in_netns("../x")


# ---- dead-man's switch ---------------------------------------------------------------------------------


def test_switch_is_a_detached_sh_that_sleeps_then_heals() -> None:
    heal = wrap(heal_partition("t1")[:1] + heal_degrade("eth0"), in_netns("ns1"))
    argv = dead_mans_switch(heal, 30, "chaoslab-r1-t1")
    assert argv[:4] == ("setsid", "-f", "sh", "-c") and argv[5] == "chaoslab-r1-t1"
    assert argv[4] == ("exec </dev/null >/dev/null 2>&1; trap 'kill $p 2>/dev/null; exit 0' TERM; "
                       "sleep 30 & p=$!; wait $p; "
                       "ip netns exec ns1 iptables -w -D INPUT -j CHAOSLAB-t1; "
                       "ip netns exec ns1 tc qdisc del dev eth0 root")
    assert shlex.split(argv[4].split("wait $p; ", 1)[1].split(";")[0]) == list(heal[0].argv)


def test_switch_refuses_tokens_a_shell_could_misread() -> None:
    for token in ("x; reboot", "$(id)", "`id`", "a b", "it's", ""):
        with pytest.raises(ValueError, match="unsafe token"):
            dead_mans_switch([Command(("echo", token))], 5, "m1")


@pytest.mark.parametrize(("deadline", "marker", "message"), [
    (0, "m1", "at least 1"), (2.5, "m1", "whole seconds"), (True, "m1", "whole seconds"),
    (5, "m 1", "marker"), (5, "-m1", "marker"), (5, "a" * 65, "marker"),
])
def test_switch_refuses_bad_deadline_or_marker(deadline: int, marker: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dead_mans_switch(heal_partition("t1"), deadline, marker)


def test_switch_needs_heal_commands() -> None:
    with pytest.raises(ValueError, match="without heal"):
        dead_mans_switch([], 5, "m1")


def test_cancel_matches_the_switch_command_line_and_not_wrappers_carrying_the_marker() -> None:
    cancel = cancel_dead_mans_switch("chaoslab-r1-t1")
    assert cancel.may_fail and cancel.argv[:3] == ("pkill", "-TERM", "-f")
    pattern = re.compile(cancel.argv[3])
    switch = dead_mans_switch(heal_partition("t1"), 30, "chaoslab-r1-t1")
    assert pattern.search(" ".join(switch[2:]))  # what /proc/PID/cmdline shows once setsid has exec'd sh
    assert not pattern.search(" ".join(dead_mans_switch(heal_partition("t1"), 30, "chaoslab-r1-t10")[2:]))
    assert not pattern.search(" ".join(("sudo", *cancel.argv)))
    assert not pattern.search(" ".join(("sh", "-c", shlex.join(cancel.argv))))


# ---- delay without netem -------------------------------------------------------------------------------


def test_nfqueue_diverts_what_the_host_receives_from_each_sender_with_bypass_into_its_own_chain() -> None:
    assert restored(nfqueue_commands("d0", CP2, [CP1, CP3, CP2], 10001)) == [
        "-N CHAOSLAB-d0",
        "-A CHAOSLAB-d0 -s 10.213.0.11 -j NFQUEUE --queue-num 10001 --queue-bypass",
        "-A CHAOSLAB-d0 -s 10.213.0.13 -j NFQUEUE --queue-num 10001 --queue-bypass",
        "-I INPUT -j CHAOSLAB-d0",
    ]


def test_nfqueue_with_ports_matches_tcp_from_or_to_them_and_heals_like_a_partition() -> None:
    rules = restored(nfqueue_commands("d0", CP2, [CP1], 7, ports=[2380]))
    divert = "-j NFQUEUE --queue-num 7 --queue-bypass"
    assert rules[1:3] == [f"-A CHAOSLAB-d0 -s 10.213.0.11 -p tcp --{end}port 2380 {divert}" for end in "ds"]
    assert rules[3:] == ["-I INPUT -j CHAOSLAB-d0"]  # received packets only: no OUTPUT hook
    assert all("-D INPUT -j CHAOSLAB-d0" not in r for r in rules)
    assert "iptables -w -D INPUT -j CHAOSLAB-d0" in lines(heal_partition("d0"))


@pytest.mark.parametrize(("queue", "senders"), [(-1, [CP1]), (65536, [CP1]), (True, [CP1]), (7, [CP2])])
def test_nfqueue_refuses_bad_queues_and_no_sender(queue: int, senders: list[Endpoint]) -> None:
    with pytest.raises(ValueError, match="queue|no other host"):
        nfqueue_commands("d0", CP2, senders, queue)


def test_delayer_command_carries_delay_jitter_deadline_and_marker_last() -> None:
    argv = delayer_command(("/venv/bin/python",), 10001, Netem(delay_ms=1500, jitter_ms=100), 1767225600,
                           "chaoslab-d0-1a2b")
    assert argv == ("/venv/bin/python", "-m", "chaoslab.faults.delayer", "--queue", "10001", "--delay-ms", "1500",
                    "--jitter-ms", "100", "--until", "1767225600", "--detach", "--marker", "chaoslab-d0-1a2b")
    with pytest.raises(ValueError, match="needs a delay"):
        delayer_command(("python3",), 1, Netem(loss_percent=5), 1767225600, "m")
    with pytest.raises(ValueError, match="marker"):
        delayer_command(("python3",), 1, Netem(delay_ms=5), 1767225600, "m; rm -rf /")


def test_stopping_the_delayer_matches_its_own_command_line_only() -> None:
    stop = stop_delayer("chaoslab-d0-1a2b")
    assert stop.may_fail and stop.argv[:3] == ("pkill", "-TERM", "-f")
    pattern = re.compile(delayer_pattern("chaoslab-d0-1a2b"))
    argv = delayer_command(("/venv/bin/python",), 1, Netem(delay_ms=5), 1767225600, "chaoslab-d0-1a2b")
    assert pattern.search(" ".join(argv))  # /proc/PID/cmdline of the delayer itself
    assert not pattern.search(" ".join(in_netns("lab-cp2")(argv)))  # the `ip netns exec` that started it
    assert not pattern.search(" ".join(("sudo", *argv)))
    assert not pattern.search(" ".join(argv[:-1] + ("chaoslab-d0-1a2b3",)))
    assert not pattern.search(" ".join(stop.argv))


# ---- one transaction per host -------------------------------------------------------------------------


def test_each_host_gets_one_restore_transaction_that_hooks_only_after_its_rules() -> None:
    rules = partition_commands("t3", split([[CP1], [CP2, CP3]], ports=[2380]))
    for host, commands in rules.items():
        text = restored(commands)
        assert text[0] == "-N CHAOSLAB-t3", host
        hooks = [i for i, line in enumerate(text) if line.startswith("-I ")]
        assert [text[i] for i in hooks] == ["-I INPUT -j CHAOSLAB-t3", "-I OUTPUT -j CHAOSLAB-t3"]
        assert all(line.startswith("-A CHAOSLAB-t3 ") for line in text[1:hooks[0]]), text
        assert hooks == list(range(len(text) - 2, len(text)))  # the hooks close the transaction


def test_the_transaction_carries_the_same_rules_as_the_rule_model() -> None:
    partition = isolate(CP1, [CP2, CP3], ports=[2379, 2380])
    for host, chain in netrules.partition_chains("t4", partition).items():
        assert restored(partition_commands("t4", partition)[host])[1:-2] == [
            f"-A {chain.name} {' '.join(rule)}" for rule in chain.rules]


@pytest.mark.parametrize("token", ["10.0.0.1 -j ACCEPT", "a\nCOMMIT", "#x", "'q'", '"q"', ""])
def test_a_rule_token_that_could_change_the_transaction_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="unsafe token"):
        netrules.Chain("CHAOSLAB-t", (("-s", token, "-j", "DROP"),))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "INPUT"}, "chain_name"), ({"rules": ()}, "no rules"), ({"hooks": ("PREROUTING",)}, "hooks"),
])
def test_a_chain_without_a_chaoslab_name_rules_or_a_filter_hook_is_refused(kwargs: dict[str, object],
                                                                          message: str) -> None:
    args: dict[str, object] = {"name": "CHAOSLAB-t", "rules": (("-j", "DROP"),), **kwargs}
    with pytest.raises(ValueError, match=message):
        netrules.Chain(**args)  # type: ignore[arg-type]


def test_wrapping_keeps_the_transaction_on_stdin() -> None:
    (install,) = partition_commands("t5", isolate(CP1, [CP2]))["cp1"]
    (wrapped,) = wrap([install], in_netns("chaoslab-lab-cp1"))
    assert wrapped.argv == ("ip", "netns", "exec", "chaoslab-lab-cp1", "iptables-restore", "-w", "--noflush")
    assert wrapped.stdin == install.stdin and wrapped.may_fail is False


def test_the_shell_form_pipes_each_line_quoted() -> None:
    (install,) = nfqueue_commands("d0", CP2, [CP1], 7)
    line = install.shell()
    assert line.endswith(" | iptables-restore -w --noflush")
    assert shlex.split(line.split(" | ")[0]) == ["printf", "%s\\n", *install.stdin.splitlines()]  # type: ignore[union-attr]


def test_the_plan_shows_the_transaction_line_by_line() -> None:
    (install,) = loss_commands("d2", CP1, [CP2], 10)
    shown = install.shown()
    assert shown[0] == "iptables-restore -w --noflush <<EOF" and shown[-1] == "  EOF"
    assert shown[1:-1] == [f"  {x}" for x in install.stdin.splitlines()]  # type: ignore[union-attr]


def test_a_command_reading_stdin_cannot_go_into_a_dead_mans_switch() -> None:
    (install,) = loss_commands("d2", CP1, [CP2], 10)
    with pytest.raises(ValueError, match="reads stdin"):
        dead_mans_switch([install], 5, "m1")


def test_stdin_is_whole_lines() -> None:
    with pytest.raises(ValueError, match="newline"):
        Command(("cat",), stdin="no newline")
