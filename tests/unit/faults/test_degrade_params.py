from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fakes
import pytest

from chaoslab.errors import SpecError, TargetError
from chaoslab.faults import build
from chaoslab.faults import partition as partition_module
from chaoslab.faults.base import Injection, heal_network
from chaoslab.faults.degrade import DegradeParams, NetworkDegrade
from chaoslab.faults.netrules import Command, Endpoint, Netem, Wrap, in_netns


def test_delay_and_jitter_are_durations_turned_into_netem_milliseconds() -> None:
    fault = build("network-degrade", {"delay": "1500ms", "jitter": 0.2})
    assert fault.params.netem == Netem(delay_ms=1500, jitter_ms=200)
    assert build("network-degrade", {"loss": 10}).params.netem is None


@pytest.mark.parametrize(("params", "message"), [
    ({}, "nothing to degrade"),
    ({"loss": 0}, "nothing to degrade"),
    ({"loss": 120}, "loss 120 must be a percentage"),
    ({"jitter": "10ms"}, "jitter needs a delay"),
    ({"delay": "soon"}, "delay: 'soon' is not a duration"),
])
def test_meaningless_settings_are_refused_with_the_parameter(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build("network-degrade", params)


# ---- which delay mechanism runs ------------------------------------------------------------------------


class FakeTarget(fakes.FakeTarget):
    """Three hosts cp1-cp3; records commands; `tc` fails as on a kernel without netem when `netem` is
    False."""

    name = "fake"
    renewal_window = 5.0
    lock_path = Path("/nonexistent")

    def __init__(self, netem: bool) -> None:
        self.netem = netem
        self.ran: list[tuple[str, ...]] = []
        self.stdins: list[str | None] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def hosts(self, component: str) -> list[str]:
        return ["cp1", "cp2", "cp3"]

    def etcd_members(self, timeout: float = 1.0) -> dict[str, Any]:
        return {}

    def endpoint(self, host: str) -> Endpoint:
        return Endpoint(host, f"10.213.0.1{host[2:]}", device="eth0")

    def host_wrap(self, host: str) -> Wrap:
        return in_netns(f"lab-{host}")

    def python(self, host: str) -> tuple[str, ...]:
        return ("/venv/bin/python",)

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        for c in commands:
            self.ran.append(c.argv)
            self.stdins.append(c.stdin)
            if not self.netem and "replace" in c.argv and not c.may_fail:
                raise TargetError(f"`{' '.join(c.argv)}` exited 2: Error: Specified qdisc kind is unknown.")
        return ["" for _ in commands]

    def record(self, kind: str, **detail: Any) -> None:
        self.events.append((kind, detail))


@pytest.fixture(autouse=True)
def leader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partition_module, "current_etcd_leader", lambda target: "cp1")


def injected(target: FakeTarget, **params: Any) -> Injection:
    fault = NetworkDegrade(DegradeParams(**params), duration=8, rng=random.Random(1))
    injection = fault.resolve(target, 0)  # type: ignore[arg-type]
    fault.inject(target, injection, record=target.record)  # type: ignore[arg-type]
    return injection


def ran(target: FakeTarget, word: str) -> list[str]:
    return [" ".join(argv) for argv in target.ran if word in argv]


def test_the_undo_covers_both_mechanisms_before_either_runs() -> None:
    fault = NetworkDegrade(DegradeParams(delay="1500ms"), duration=8)
    undo = fault.resolve(FakeTarget(netem=True), 2).undo[0].params  # type: ignore[arg-type]
    assert undo["hosts"] == ["cp1", "cp2", "cp3"] and undo["devices"] == {"cp1": "eth0"}
    assert undo["delayers"] == ["cp2", "cp3"] and 12000 <= undo["queue"] < 13000
    loss_only = NetworkDegrade(DegradeParams(loss=5), duration=8)
    assert "delayers" not in loss_only.resolve(FakeTarget(netem=True), 0).undo[0].params  # type: ignore[arg-type]


def test_delay_uses_netem_on_the_host_where_the_kernel_has_it() -> None:
    target = FakeTarget(netem=True)
    injected(target, delay="1500ms")
    assert ran(target, "netem") and not ran(target, "chaoslab.faults.delayer") and not ran(target, "NFQUEUE")
    assert [(k, d["mechanism"], d["on"]) for k, d in target.events] == [("degrade", "netem", ["cp1"])]


def test_without_netem_each_peer_gets_a_bound_delayer_then_rules_for_what_the_host_sends_it() -> None:
    target = FakeTarget(netem=False)
    injection = injected(target, delay="1500ms", jitter="100ms")
    queue = injection.undo[0].params["queue"]
    starts = ran(target, "chaoslab.faults.delayer")
    assert [s.split()[3] for s in starts] == ["lab-cp2", "lab-cp3"]
    assert all(f"--queue {queue} --delay-ms 1500 --jitter-ms 100" in s for s in starts)
    rules = [i for i, text in enumerate(target.stdins) if text and "NFQUEUE" in text]
    assert [target.ran[i] for i in rules] == [("ip", "netns", "exec", f"lab-{h}", "iptables-restore", "-w", "--noflush")
                                              for h in ("cp2", "cp3")]
    assert all(f"-A CHAOSLAB-{injection.undo[0].params['tag']} -s 10.213.0.11 -j NFQUEUE --queue-num {queue} "
               f"--queue-bypass\n" in (target.stdins[i] or "") for i in rules)
    # the half-built prio qdisc is removed before falling back; each delayer starts before its rules
    assert ran(target, "del") and target.ran.index(tuple(starts[0].split())) < rules[0]
    assert [(k, d["mechanism"], d["on"]) for k, d in target.events] == [("degrade", "nfqueue", ["cp2", "cp3"])]


def test_heal_stops_the_delayers_after_removing_their_rules() -> None:
    target = FakeTarget(netem=False)
    injection = injected(target, delay="1500ms")
    target.ran.clear()
    heal_network(target, injection.undo[0].params)  # type: ignore[arg-type]
    flat = [" ".join(a) for a in target.ran]
    unhook = max(i for i, c in enumerate(flat) if "-D INPUT" in c)
    stops = [i for i, c in enumerate(flat) if c.startswith("ip netns exec") and "pkill -TERM -f ^[^ ]+ -m" in c]
    assert len(stops) == 2 and min(stops) > unhook


def test_the_dry_run_plan_shows_both_delay_mechanisms_and_their_undo() -> None:
    fault = NetworkDegrade(DegradeParams(delay="1500ms", loss=5), duration=8)
    target = FakeTarget(netem=True)
    actions, undo = fault.describe(target, fault.resolve(target, 0))  # type: ignore[arg-type]
    assert any("netem delay 1500ms" in a for a in actions) and any("statistic" in a for a in actions)
    assert any("NFQUEUE" in a and "cp2, cp3" in a for a in actions)
    assert "cp2: stop the delayer" in undo and "cp1: remove the netem qdisc of eth0" in undo
    assert target.ran == []  # planning runs nothing


def test_a_target_arming_the_switch_on_each_host_gets_one_switch_per_host_in_the_plan() -> None:
    import shlex

    class OverSsh(FakeTarget):
        remote_switch = True

        def host_wrap(self, host: str) -> Wrap:
            return lambda argv: ("ssh", host, "--", shlex.join(argv))  # one quoted string, as ssh sends it

    fault = NetworkDegrade(DegradeParams(delay="1500ms"), duration=8)
    target = OverSsh(netem=True)
    actions, _ = fault.describe(target, fault.resolve(target, 0))  # type: ignore[arg-type]
    arms = [a for a in actions if a.startswith("arm: ")]
    assert [a.split()[2] for a in arms] == ["cp1", "cp2", "cp3"]
