"""The delayer's pure parts: how long each packet waits, and the order packets are let go in."""

from __future__ import annotations

import doctest
import random

import pytest

from chaoslab.faults import delayer
from chaoslab.faults.delayer import Held, Schedule, main


def test_public_api_is_pinned() -> None:
    assert sorted(delayer.__all__) == ["Held", "Schedule", "main"]


def test_docstring_example_holds() -> None:
    assert doctest.testmod(delayer).failed == 0


def test_without_jitter_every_packet_waits_exactly_the_delay() -> None:
    assert {Schedule(1500).wait() for _ in range(100)} == {1.5}


def test_jitter_varies_the_wait_uniformly_within_the_bounds_and_never_below_zero() -> None:
    schedule = Schedule(200, 50, random.Random(1))
    waits = [schedule.wait() for _ in range(2000)]
    assert 0.150 <= min(waits) < 0.155 and 0.245 < max(waits) <= 0.250
    assert abs(sum(waits) / len(waits) - 0.2) < 0.003
    short = Schedule(10, 50, random.Random(2))
    assert min(short.wait() for _ in range(500)) == 0.0


@pytest.mark.parametrize(("delay", "jitter"), [(0, 0), (-5, 0), (10, -1)])
def test_a_schedule_needs_a_delay_and_a_non_negative_jitter(delay: int, jitter: int) -> None:
    with pytest.raises(ValueError, match="give a delay"):
        Schedule(delay, jitter)


def test_packets_are_let_go_by_release_time_and_in_arrival_order_on_ties() -> None:
    held: Held[str] = Held()
    for packet, release in [("p1", 1.0), ("p2", 1.5), ("p3", 1.2), ("p4", 1.2)]:
        held.add(packet, release)
    assert held.due(0.9) == [] and held.next_release() == 1.0
    assert held.due(1.2) == ["p1", "p3", "p4"]
    assert len(held) == 1 and held.next_release() == 1.5
    held.add("p5", 9.0)
    assert held.all() == ["p2", "p5"] and len(held) == 0 and held.next_release() is None


def test_a_constant_delay_never_reorders() -> None:
    schedule, held = Schedule(300), Held[int]()
    for i in range(100):
        held.add(i, i * 0.001 + schedule.wait())
    assert held.all() == list(range(100))


@pytest.mark.parametrize("argv", [
    ["--queue", "70000", "--delay-ms", "5", "--until", "1"],
    ["--queue", "1", "--delay-ms", "0", "--until", "1"],
])
def test_bad_arguments_exit_2_before_touching_any_queue(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "chaoslab.faults.delayer:" in capsys.readouterr().err
