"""etcd-nospace and etcd-defrag without a cluster: their settings, and the one rule that keeps the user's
data safe — the runbook and the switch only ever delete chaoslab's own prefix."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chaoslab.errors import SpecError
from chaoslab.faults import build
from chaoslab.faults.etcd_maintenance import check_prefix, switch_pattern


@pytest.mark.parametrize(("kind", "params", "message"), [
    ("etcd-nospace", {"valueSize": 10}, "valueSize.*give 1024 to 1048576"),
    ("etcd-nospace", {"valueSize": 4096, "maxFill": 1024}, "maxFill.*less than one value"),
    ("etcd-defrag", {"select": "everyone"}, "'everyone' is not one of"),
    ("etcd-defrag", {"ballast": -1}, "ballast.*give 0 to 1 GiB"),
])
def test_meaningless_settings_are_refused_with_the_parameter(kind: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build(kind, params)


@pytest.mark.parametrize("prefix", ["/", "/registry/", "/chaoslab/", "/chaoslab/nospace/", "/chaoslab/nospace/x/../",
                                    "/chaoslab/writes/abc/def/", "chaoslab/nospace/n0-1/"])
def test_only_chaoslabs_own_fault_prefixes_can_be_deleted(prefix: str) -> None:
    with pytest.raises(ValueError, match="not chaoslab's own"):
        check_prefix(prefix)
    assert check_prefix("/chaoslab/nospace/n0-1a2b3c4d/") == "/chaoslab/nospace/n0-1a2b3c4d/"


def test_the_switch_pattern_matches_its_own_command_line_only() -> None:
    pattern = re.compile(switch_pattern("chaoslab-n0-1a2b3c4d"))
    line = ("/usr/bin/python3 -m chaoslab.faults.etcd_maintenance --prefix /chaoslab/nospace/n0-1a2b3c4d/ "
            "--member cp1=127.0.0.1:2379 --until 1 --detach --marker chaoslab-n0-1a2b3c4d")
    assert pattern.search(line)
    assert not pattern.search("sh -c " + line)
    assert not pattern.search(line + "0")
