from __future__ import annotations

import random

import pytest

from chaoslab.faults.selection import choose, how_many, namespace_problems, protection, selection_problems


@pytest.mark.parametrize(("namespace", "namespaces", "allow", "reason"), [
    ("shop", ("shop",), False, ""),
    ("shop", ("*",), False, ""),
    ("other", ("shop",), False, "namespace 'other' is protected (name it in namespaces)"),
    ("kube-system", ("*",), False, "namespace 'kube-system' is protected (set allowKubeSystem)"),
    ("kube-system", ("kube-system",), False, "namespace 'kube-system' is protected (set allowKubeSystem)"),
    ("kube-system", ("*",), True, ""),
    ("kube-system", ("shop",), True, "namespace 'kube-system' is protected (name it in namespaces)"),
])
def test_kube_system_needs_consent_and_every_namespace_must_be_named(
        namespace: str, namespaces: tuple[str, ...], allow: bool, reason: str) -> None:
    assert protection(namespace, namespaces, allow) == reason


def test_how_many_takes_count_or_percent_rounded_up_within_the_candidates() -> None:
    assert how_many(10, None, None) == 1
    assert how_many(10, None, 15) == 2
    assert how_many(2, 5, None) == 2
    assert how_many(0, None, 50) == 0


def test_choose_refuses_a_selection_over_the_limit_and_names_the_parameter() -> None:
    chosen, problems = choose(["a", "b", "c", "d"], [], None, 100, 3, random.Random(1), "pod", "maxPods")
    assert chosen == [] and problems == ["4 pods selected (a, b, c, d) but maxPods is 3; raise maxPods to select more"]
    assert choose([], [], 1, None, 3, random.Random(), "pod", "maxPods") == ([], ["no pod matches"])
    chosen, problems = choose(["a", "b", "c", "d"], [], 2, None, 3, random.Random(1), "pod", "maxPods")
    assert len(chosen) == 2 and set(chosen) <= {"a", "b", "c", "d"} and not problems


def test_selection_problems_before_any_cluster_is_seen() -> None:
    assert selection_problems("evict-pods", "pod", (), None, 5, None, 3, "maxPods") == [
        "evict-pods: 5 pods asked for but maxPods is 3; raise maxPods to select more"]
    assert selection_problems("node-failure", "node", ("a",), "x=y", None, None, 1, "maxNodes") == [
        "node-failure: name `nodes`, or select with `selector`/`count`/`percent`, not both"]
    assert "percent must be more than 0" in selection_problems("k", "pod", (), None, None, 0, 3, "maxPods")[0]
    assert selection_problems("k", "pod", (), None, None, None, 0, "maxPods") == ["k: maxPods must be at least 1"]
    assert namespace_problems("evict-pods", ())[0].startswith("evict-pods: name the `namespaces`")
    assert namespace_problems("evict-pods", ("*",)) == []
