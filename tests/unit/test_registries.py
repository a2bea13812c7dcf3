"""Fault, probe and target kinds share one registry shape: built-ins registered explicitly, third-party kinds
from an entry-point group, every plugin checked when it is registered, with an error naming it."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from chaoslab.errors import SpecError
from chaoslab.faults import FAULTS
from chaoslab.probes import PROBES
from chaoslab.probes.base import Sampler
from chaoslab.registry import Registry
from chaoslab.targets import TARGETS, TargetBase, resolve_target


def test_the_built_in_kinds_are_registered() -> None:
    assert {"kill-process", "partition", "network-degrade", "drain-node", "evict-pods", "node-failure"} <= set(FAULTS)
    assert set(PROBES) == {"etcd", "lease", "apiserver", "canary", "writes", "kube-sequence", "workloads", "admission",
                           "apiserver-metrics", "etcd-metrics", "records", "node-lease"}
    with pytest.raises(SpecError):
        resolve_target("nowhere")  # fills the target registry on first use
    assert {"lab", "kubeconfig", "ssh"} <= set(TARGETS)


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(SpecError, match="unknown probe kind 'tcp'; known: admission, apiserver, apiserver-metrics, canary, etcd"):
        PROBES.get_kind("tcp")


class Slow(Sampler):
    kind = "slow"
    params = ("depth",)

    def sample_once(self) -> None:
        pass


class NotASampler:
    kind = "plain"
    params = ()


def test_a_probe_must_take_what_it_declares_and_be_a_sampler() -> None:
    with pytest.raises(TypeError, match=r"probe plugin .*Slow: __init__ does not take its declared parameter 'depth'"):
        PROBES.register(Slow)
    with pytest.raises(TypeError, match=r"probe plugin .*NotASampler: must derive from .*Sampler"):
        PROBES.register(NotASampler)  # type: ignore[arg-type]
    assert "slow" not in PROBES and "plain" not in PROBES


def test_a_target_must_derive_the_capabilities_and_build_itself() -> None:
    class Bare:
        kind = "bare"

    class NoBuild(TargetBase):
        kind = "nobuild"

    with pytest.raises(TypeError, match=r"target plugin .*Bare: must derive from chaoslab.targets.TargetBase"):
        TARGETS.register(Bare)
    with pytest.raises(TypeError, match=r"target plugin .*NoBuild: has no from_params"):
        TARGETS.register(NoBuild)


def test_a_kind_claimed_twice_is_refused_and_the_first_stays() -> None:
    class A:
        kind: ClassVar[str] = "x"

    class B:
        kind: ClassVar[str] = "x"

    registry: Registry[Any] = Registry("widget", "chaoslab.test-widgets", lambda cls: [])
    registry.register(A)
    with pytest.raises(TypeError, match="widget kind 'x' is claimed by A and B"):
        registry.register(B)
    assert registry.get_kind("x") is A


def test_every_built_in_target_answers_the_whole_protocol() -> None:
    from chaoslab.targets import Target

    with pytest.raises(SpecError):
        resolve_target("nowhere")  # fills the target registry on first use
    resolve_target_kinds = [TARGETS.get_kind(k) for k in ("lab", "kubeconfig", "ssh")]
    members = [n for n in dir(Target) if not n.startswith("_")]
    assert {cls.__name__: [n for n in members if not hasattr(cls, n)] for cls in resolve_target_kinds} == \
        {"LabTarget": [], "KubeconfigTarget": [], "SshTarget": []}
