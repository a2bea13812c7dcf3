from __future__ import annotations

import random
from typing import Any

import fakes
import pytest

from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import FAULTS, build, register
from chaoslab.faults.base import Undo, apply_undo
from chaoslab.faults.kill_process import KillProcess, KillProcessParams


class FakeTarget(fakes.FakeTarget):
    """Three hosts; cp2 leads every leader-elected component (see `target`); records signals and holds."""


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> FakeTarget:
    monkeypatch.setattr(KillProcess, "_leader", lambda self, t: "cp2")
    return FakeTarget()


def kill(**params: Any) -> KillProcess:
    return KillProcess(KillProcessParams(**params), rng=random.Random(1))


def test_leader_and_follower_selection(target: FakeTarget) -> None:
    assert kill(component="kube-scheduler").choose(target) == ("leader", ["cp2"])  # type: ignore[arg-type]
    role, hosts = kill(component="etcd", select="follower", count=2).choose(target)  # type: ignore[arg-type]
    assert role == "follower" and sorted(hosts) == ["cp1", "cp3"]
    assert kill(component="etcd", select="all").choose(target)[1] == ["cp1", "cp2", "cp3"]  # type: ignore[arg-type]
    assert kill(component="etcd", select="host:cp3").choose(target) == ("host:cp3", ["cp3"])  # type: ignore[arg-type]


def test_unknown_host_is_refused_with_the_hosts_there_are(target: FakeTarget) -> None:
    with pytest.raises(InjectionError, match="no etcd on 'cp9'; hosts: cp1, cp2, cp3"):
        kill(component="etcd", select="host:cp9").choose(target)  # type: ignore[arg-type]


def test_apiserver_has_no_leader() -> None:
    with pytest.raises(InjectionError, match="kube-apiserver has no leader"):
        kill(component="kube-apiserver")._leader(FakeTarget())  # type: ignore[arg-type]


def test_stop_is_undone_with_cont_and_kill_needs_no_undo(target: FakeTarget) -> None:
    stop = kill(component="etcd", select="follower", signal="STOP").resolve(target, 0)  # type: ignore[arg-type]
    assert stop.undo == (Undo("signal", {"component": "etcd", "host": stop.targets[0].split("@")[1],
                                         "signal": "CONT"}),)
    assert kill(component="etcd").resolve(target, 0).undo == ()  # type: ignore[arg-type]


def test_inject_signals_exactly_the_resolved_targets_and_undo_replays(target: FakeTarget) -> None:
    fault = kill(component="kube-controller-manager", signal="STOP")
    injection = fault.resolve(target, 0)  # type: ignore[arg-type]
    fault.inject(target, injection)  # type: ignore[arg-type]
    for undo in injection.undo:
        apply_undo(target, undo)  # type: ignore[arg-type]
    assert target.signals == [("kube-controller-manager", "cp2", "STOP"), ("kube-controller-manager", "cp2", "CONT")]


def test_registry_builds_by_kind_and_rejects_bad_input() -> None:
    assert isinstance(build("kill-process", {"component": "etcd"}), KillProcess)
    with pytest.raises(SpecError, match="unknown fault kind 'explode'; known: .*cert-expiry, .*drain-node, .*kill-process"):
        build("explode", {})
    with pytest.raises(SpecError, match="unknown parameter"):
        build("kill-process", {"component": "etcd", "sigal": "KILL"})


def test_a_kind_claimed_twice_is_refused() -> None:
    class Impostor(KillProcess):
        pass

    with pytest.raises(TypeError, match="claimed by KillProcess and Impostor"):
        register(Impostor)
    assert FAULTS["kill-process"] is KillProcess
