"""While probes sample, what was alive at their start is out of the garbage collector's reach (a full
collection would stall every sample); the last group to stop hands it back."""

import gc

import pytest

from chaoslab.probes import PROBES, ProbeGroup, collector
from chaoslab.probes.base import Sampler
from chaoslab.timeline import Timeline


class Quiet(Sampler):
    kind = "quiet"
    requests_per_second = 0.0

    def start(self) -> None:
        pass


class Broken(Quiet):
    def start(self) -> None:
        raise RuntimeError("cannot reach the target")


def group(monkeypatch: pytest.MonkeyPatch, probe: type[Sampler]) -> ProbeGroup:
    monkeypatch.setattr(PROBES, "get_kind", lambda kind: probe)
    return ProbeGroup.start([{"kind": probe.kind}], None, Timeline.start())  # type: ignore[arg-type]


def test_objects_alive_at_the_start_are_frozen_until_the_last_group_stops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    first = group(monkeypatch, Quiet)
    assert gc.get_freeze_count() > 0
    second = group(monkeypatch, Quiet)
    first.stop()
    first.stop()  # a second stop releases nothing more
    assert gc.get_freeze_count() > 0
    second.stop()
    assert gc.get_freeze_count() == 0


def test_a_group_that_fails_to_start_unfreezes(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    with pytest.raises(RuntimeError):
        group(monkeypatch, Broken)
    assert gc.get_freeze_count() == 0
    assert collector._sampling == 0
