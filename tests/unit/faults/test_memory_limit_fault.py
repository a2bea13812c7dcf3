"""memory-limit without a cluster: its settings, the host-side helper over a directory standing in for the
cgroup hierarchy (the real one is exercised in tests/integration/test_memory_limit.py), and `oomKills`
from a planted timeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chaoslab.clients.hosts import Command, Wrap, on_host
from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import build, memory_cgroup
from chaoslab.faults.base import apply_undo
from chaoslab.judge.measure import measure
from chaoslab.timeline import Timeline


@pytest.mark.parametrize(("params", "message"), [
    ({"headroom": "8Mi"}, "at least 16Mi"),
    ({"headroom": "512M"}, "give a size in Mi or Gi"),
    ({"component": "kubelet"}, "'kubelet' is not one of"),
    ({"deadman": 1}, "at least 5"),
])
def test_meaningless_settings_are_refused_with_the_parameter(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build("memory-limit", params)


def test_headroom_in_bytes() -> None:
    assert build("memory-limit", {"headroom": "64Mi"}).params.bytes() == 64 << 20
    assert build("memory-limit", {"headroom": "2Gi"}).params.bytes() == 2 << 30


def test_only_chaoslabs_cgroups_are_touched() -> None:
    assert memory_cgroup.cgroup_dir("/a/b/chaoslab-m0-1a2b3c4d") == memory_cgroup.ROOT / "a/b/chaoslab-m0-1a2b3c4d"
    for bad in ("/a/b", "/a/../chaoslab-x", "a/chaoslab-x", "/a/chaoslab-x/..", "/a b/chaoslab-x", "/chaoslab-X"):
        with pytest.raises(ValueError):
            memory_cgroup.cgroup_dir(bad)
    with pytest.raises(ValueError, match="no cgroup v1 memory controller"):
        memory_cgroup.memory_cgroup("0::/user.slice\n")


def test_cap_then_release_over_a_stand_in_hierarchy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_cgroup, "ROOT", tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cgroup.procs").write_text("")
    out = memory_cgroup.cap(4242, 64 << 20, "/a/chaoslab-m0-1")
    d = tmp_path / "a" / "chaoslab-m0-1"
    assert out["limit"] == 64 << 20 and (d / "memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (d / "cgroup.procs").read_text() == "4242"
    (d / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (d / "memory.failcnt").write_text("17\n")
    # A real cgroup's files vanish with it; a plain directory must be emptied for rmdir to work.
    real_rmdir = Path.rmdir

    def rmdir(self: Path) -> None:
        for f in self.iterdir():
            f.unlink()
        real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", rmdir)
    stats = memory_cgroup.release("/a/chaoslab-m0-1")
    assert stats["oomKills"] == 2 and stats["failcnt"] == 17 and not stats["gone"]
    assert (tmp_path / "a" / "cgroup.procs").read_text() == "4242"  # moved back to the parent
    assert not d.exists()
    assert memory_cgroup.release("/a/chaoslab-m0-1") == {"cgroup": "/a/chaoslab-m0-1", "gone": True}


class Machine:
    """One host, cp1, whose apiserver has pid 77 in memory cgroup /box; answers the helper as the host would."""

    name = "fake"
    remote_switch = False

    def __init__(self, cap_fails: bool = False) -> None:
        self.cap_fails = cap_fails
        self.ran: list[tuple[str, ...]] = []

    def hosts(self, component: str) -> list[str]:
        return ["cp1"]

    def pid(self, component: str, host: str) -> int | None:
        return 77

    def python(self, host: str) -> tuple[str, ...]:
        return ("py",)

    def host_wrap(self, host: str) -> Wrap:
        raise AssertionError("cgroups are not reached through the host's network namespace")

    def machine_wrap(self, host: str) -> Wrap:
        return on_host

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        out = []
        for c in commands:
            self.ran.append(c.argv)
            if c.argv[0] == "cat":
                out.append("4:memory:/box\n1:cpu:/\n")
            elif "cap" in c.argv:
                if self.cap_fails:
                    from chaoslab.errors import TargetError

                    raise TargetError("memory_cgroup cap: [Errno 13] Permission denied")
                out.append(json.dumps({"limit": 1 << 30, "rss": 5 << 20}))
            elif "release" in c.argv and "sh" not in c.argv:
                out.append(json.dumps({"gone": False, "oomKills": 1, "maxUsage": 9, "failcnt": 3}))
            else:
                out.append("")
        return out


def test_resolve_writes_the_cgroup_and_the_switch_comes_before_the_move() -> None:
    target = Machine()
    fault = build("memory-limit", {"headroom": "1Gi"}, duration=30)
    injection = fault.resolve(target, 0)  # type: ignore[arg-type]
    [undo] = injection.undo
    assert undo.action == "release-memory" and undo.params["cgroup"].startswith("/box/chaoslab-m0-")
    events: list[Any] = []
    fault.inject(target, injection, record=lambda kind, **d: events.append((kind, d)))  # type: ignore[arg-type]
    switch, cap = target.ran[1], target.ran[2]
    assert switch[:2] == ("setsid", "-f") and "release --cgroup " + undo.params["cgroup"] in switch[4]
    assert "90" in switch[4].split("sleep ")[1].split(" ")[0]  # duration + deadman
    assert cap == ("py", "-m", "chaoslab.faults.memory_cgroup", "cap", "--pid", "77", "--limit", str(1 << 30),
                   "--cgroup", undo.params["cgroup"])
    assert events == [("memory-limit", {"fault": "memory-limit", "index": 0, "host": "cp1", "pid": 77,
                                        "component": "kube-apiserver", "cgroup": undo.params["cgroup"],
                                        "headroom_bytes": 1 << 30, "rss_bytes": 5 << 20})]
    released: list[Any] = []
    apply_undo(target, undo, record=lambda kind, **d: released.append((kind, d)))  # type: ignore[arg-type]
    assert released[0][0] == "memory-released" and released[0][1]["oom_kills"] == 1
    assert target.ran[-1][:2] == ("pkill", "-TERM")  # the switch disarmed after the release


def test_a_failed_move_says_why_and_leaves_the_switch_to_the_revert() -> None:
    target = Machine(cap_fails=True)
    fault = build("memory-limit", {}, duration=30)
    injection = fault.resolve(target, 0)  # type: ignore[arg-type]
    with pytest.raises(InjectionError, match="could not limit kube-apiserver on cp1.*Permission denied"):
        fault.inject(target, injection)  # type: ignore[arg-type]
    assert not [argv for argv in target.ran if argv[0] == "pkill"]  # the move may have happened (a timeout)
    apply_undo(target, injection.undo[0])  # type: ignore[arg-type]  # what the executor does next
    assert target.ran[-1][:2] == ("pkill", "-TERM")


def test_a_cgroup_chaoslab_cannot_name_is_refused_at_resolve() -> None:
    target = Machine()
    target.run_commands = lambda commands: ["4:memory:/system.slice/kube\\x2dapiserver.service\n"]  # type: ignore[method-assign]
    with pytest.raises(InjectionError, match="cannot name one of its own"):
        build("memory-limit", {}).resolve(target, 0)  # type: ignore[arg-type]


def test_oom_kills_are_the_kernels_count_and_unreleased_limits_are_not_measured() -> None:
    tl = Timeline(0.0, 0.0, lambda: 0.0)
    tl.event("run-start", t=0.0)
    tl.event("memory-limit", t=1.0, host="cp1", pid=77, component="kube-apiserver")
    tl.event("inject", t=1.0, fault="memory-limit", index=0)
    values = measure(tl, [], 5.0).values
    assert values["oomKills"] is None
    tl.event("revert", t=20.0, fault="memory-limit", index=0, ok=True)
    tl.event("memory-released", t=20.0, host="cp1", pid=77, component="kube-apiserver", oom_kills=1,
             max_usage_bytes=64 << 20, failcnt=40)
    tl.event("run-end", t=30.0)
    m = measure(tl, [], 5.0)
    assert m.values["oomKills"] == 1.0
    assert "1 OOM kill(s), peak 64 MiB" in m.evidence["oomKills"]
    tl.event("memory-released", t=21.0, host="cp1", pid=78, component="kube-apiserver", cgroup="/b/chaoslab-x",
             gone=True, oom_kills=None)
    m = measure(tl, [], 5.0)
    assert m.values["oomKills"] is None and "released by the dead-man's switch first" in m.evidence["oomKills"]
