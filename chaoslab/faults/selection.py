"""What a Kubernetes-level fault may touch, as pure logic shared by `drain-node`, `evict-pods` and
`node-failure`: protected namespaces, how many of the candidates a `count` or `percent` picks, and the
blast-radius limit that refuses a larger selection instead of cutting it down.

The parameter names are the same in every fault that uses them (`namespaces`, `allowKubeSystem`,
`count`, `percent`, `selector`, and a `max…` limit), and so are the messages.

    >>> protection("kube-system", ("*",), allow_kube_system=False)
    "namespace 'kube-system' is protected (set allowKubeSystem)"
    >>> choose(["a", "b", "c"], [], None, 100, 2, random.Random(), "node", "maxNodes")[1]
    ['3 nodes selected (a, b, c) but maxNodes is 2; raise maxNodes to select more']
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

KUBE_SYSTEM = "kube-system"
ALL_NAMESPACES = "*"


def protection(namespace: str, namespaces: Sequence[str], allow_kube_system: bool) -> str:
    """Why a namespace is protected, or "" when pods in it may be touched: kube-system needs
    `allowKubeSystem` (and to be named, or `*`); every other namespace must be named in `namespaces`."""
    if namespace == KUBE_SYSTEM and not allow_kube_system:
        return f"namespace {namespace!r} is protected (set allowKubeSystem)"
    if ALL_NAMESPACES not in namespaces and namespace not in namespaces:
        return f"namespace {namespace!r} is protected (name it in namespaces)"
    return ""


def how_many(candidates: int, count: int | None, percent: float | None) -> int:
    """How many of `candidates` to pick: `count`, or `percent` of them rounded up, else 1."""
    if percent is not None:
        return min(candidates, math.ceil(candidates * percent / 100))
    return min(candidates, 1 if count is None else count)


def choose(known: Sequence[str], names: Sequence[str], count: int | None, percent: float | None, limit: int,
           rng: random.Random, noun: str, limit_name: str) -> tuple[list[str], list[str]]:
    """(chosen, problems). `known` are the candidates (already narrowed by label selector); `names`, if
    given, are taken as they are; else `count` or `percent` of the candidates at random. More than `limit`
    is a problem, never silently cut down: the blast radius is the experiment's promise."""
    if names:
        missing = [n for n in names if n not in known]
        if missing:
            return [], [f"no {noun} {', '.join(missing)} (among {', '.join(sorted(known)) or 'none'})"]
        chosen = list(dict.fromkeys(names))
    else:
        if not known:
            return [], [f"no {noun} matches"]
        chosen = sorted(rng.sample(list(known), how_many(len(known), count, percent)))
    if len(chosen) > limit:
        return [], [(f"{len(chosen)} {noun}s selected ({', '.join(chosen)}) but {limit_name} is {limit}; "
                    f"raise {limit_name} to select more")]
    return chosen, []


def selection_problems(kind: str, noun: str, names: Sequence[str], selector: str | None, count: int | None,
                       percent: float | None, limit: int, limit_name: str) -> list[str]:
    """What is wrong with a fault's selection parameters, before it meets a cluster."""
    problems = []
    if names and (count is not None or percent is not None or selector):
        problems.append(f"{kind}: name `{noun}s`, or select with `selector`/`count`/`percent`, not both")
    if count is not None and percent is not None:
        problems.append(f"{kind}: set `count` or `percent`, not both")
    if count is not None and count < 1:
        problems.append(f"{kind}: count must be at least 1")
    if percent is not None and not 0 < percent <= 100:
        problems.append(f"{kind}: percent must be more than 0 and at most 100")
    if limit < 1:
        problems.append(f"{kind}: {limit_name} must be at least 1")
    wanted = len(set(names)) if names else count
    if wanted is not None and wanted > limit:
        problems.append(f"{kind}: {wanted} {noun}s asked for but {limit_name} is {limit}; "
                        f"raise {limit_name} to select more")
    return problems


def namespace_problems(kind: str, namespaces: Sequence[str]) -> list[str]:
    if namespaces:
        return []
    return [(f"{kind}: name the `namespaces` whose pods may be evicted (`*` for all but kube-system); every "
            f"other namespace is protected")]
