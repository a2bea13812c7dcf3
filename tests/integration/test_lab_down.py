"""`lab down` leaves nothing behind: no process, namespace, link, rule or state. Uses a small lab of its
own (profile small, one host) so it can be torn down mid-session, and runs next to the session lab."""

from __future__ import annotations

import os
import signal

import pytest

from chaoslab.lab.config import LabConfig, LabLayout
from chaoslab.lab.install import find_binaries
from chaoslab.lab.lifecycle import down, lab_processes, leftovers, supervisor_pid, up
from chaoslab.lab.system import run


def rules(iptables_save: str) -> list[str]:
    """iptables-save without its timestamped comment lines."""
    return [line for line in iptables_save.splitlines() if not line.startswith("#")]


@pytest.mark.slow
def test_down_leaves_nothing_even_after_the_supervisor_was_killed(lab: LabLayout) -> None:
    config = LabConfig(name="itdown", profile="small", hosts=1, nodes=1, port_base=18443)
    layout = LabLayout(config)
    rules_before = run(["iptables-save"]).stdout
    links_before = run(["ip", "-o", "link"]).stdout
    up(config, find_binaries(), timeout=180)
    assert lab_processes(layout)
    # The hard case: the supervisor dies first, so only the sweep can find its orphans.
    supervisor = supervisor_pid(layout)
    assert supervisor
    os.kill(supervisor, signal.SIGKILL)
    assert down(layout) == []
    assert leftovers(layout) == []
    assert "chaoslab-itdown" not in run(["ip", "netns", "list"]).stdout
    assert run(["ip", "-o", "link"]).stdout == links_before
    assert rules(run(["iptables-save"]).stdout) == rules(rules_before)
    assert down(layout) == []  # safe to run twice
    # The session lab is untouched.
    assert lab_processes(lab)
