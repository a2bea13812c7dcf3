"""The ssh target without a network: command lines (quoting, refusals), settings validation with places,
and the remote dead-man's switch wiring, with a fake command runner."""

from __future__ import annotations

import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeTarget

from chaoslab.errors import InjectionError, SpecError, TargetError
from chaoslab.faults.base import arm_switch, disarm_switch
from chaoslab.faults.netrules import Command, heal_partition, wrap
from chaoslab.spec.loader import load_text
from chaoslab.targets import resolve_target
from chaoslab.targets.ssh import (
    PROCESS_PATTERNS,
    SshHost,
    SshSettings,
    SshTarget,
    exit_argv,
    find_pid_argv,
    remote_command,
    shared,
    ssh_argv,
)

PARAMS: dict[str, Any] = {
    "kind": "ssh", "kubeconfig": "/etc/kubernetes/admin.conf", "key": "/keys/id_ed25519",
    "knownHosts": "/keys/known_hosts",
    "hosts": [{"name": "cp1", "address": "10.0.0.11"},
              {"name": "cp2", "address": "cp2.example.org", "peerAddress": "10.0.0.12", "user": "admin",
               "port": 2222, "sudo": True}],
}


def settings(**extra: Any) -> SshSettings:
    return SshSettings.from_params({**PARAMS, **extra})


def test_the_remote_command_is_one_quoted_string_that_splits_back_into_the_argv() -> None:
    s = settings()
    argv = ["sh", "-c", "echo $HOME; rm -rf / `id`", "x y", "it's"]
    line = ssh_argv(s, s.hosts[0], argv)
    assert line[-3:-1] == ("--", "10.0.0.11")
    assert shlex.split(line[-1]) == argv  # what the remote shell sees is exactly the argv, nothing more


def test_options_are_spelled_out_and_never_prompt() -> None:
    s = settings()
    line = ssh_argv(s, s.hosts[1], ["true"])
    joined = " ".join(line)
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "ConnectTimeout=5",
                   "UserKnownHostsFile=/keys/known_hosts", "IdentitiesOnly=yes"):
        assert option in joined
    assert line[:1] == ("ssh",)
    assert ("-p", "2222") == line[line.index("-p"):line.index("-p") + 2]
    assert ("-l", "admin") == line[line.index("-l"):line.index("-l") + 2]
    assert line[-2:] == ("cp2.example.org", "sudo -n -- true")


@pytest.mark.parametrize("token", ["a\nb", "a\rb", "nul\x00", "\x1b[31m"])
def test_control_characters_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="unsafe token"):
        remote_command(SshHost("cp1", "10.0.0.11", "10.0.0.11"), ["echo", token])


def test_default_patterns_are_anchored_so_the_lookup_never_finds_itself() -> None:
    import re

    pattern = PROCESS_PATTERNS["kube-scheduler"]
    assert re.search(pattern, "kube-scheduler --kubeconfig=/etc/kubernetes/scheduler.conf")
    assert re.search(pattern, "/usr/local/bin/kube-scheduler --leader-elect=true")
    assert not re.search(pattern, "sh -c me=... chaoslab-find ^([^ ]*/)?kube-scheduler( |$)")
    assert not re.search(pattern, "tail -f /var/log/kube-scheduler.log")
    assert not re.search(PROCESS_PATTERNS["etcd"], "etcdctl member list")
    # The pattern reaches the remote side as a positional argument, never inside the script.
    argv = find_pid_argv(pattern)
    assert argv[-1] == pattern and pattern not in argv[2]


def test_every_problem_is_reported_with_its_field() -> None:
    bad = {"kind": "ssh", "hosts": [{"name": "CP1", "address": "not an address", "port": 0, "colour": "red"},
                                    {"name": "cp2", "address": "cp2.example.org"}],
           "strictHostKeyChecking": "maybe", "processes": {"etcd": "etcd"}, "sshCommand": "ssh -v",
           "python": ["python3", "-c\n"], "etcd": {"endpoints": {"cp1": "http://10.0.0.11"}}, "bogus": 1}
    with pytest.raises(SpecError) as info:
        SshSettings.from_params(bad)
    text = str(info.value)
    for expected in ("spec.target.bogus: unknown field", "spec.target.hosts[0].name: 'CP1'",
                     "spec.target.hosts[0].address", "spec.target.hosts[0].port: 0 is not a TCP port",
                     "spec.target.hosts[0].colour: unknown field",
                     "spec.target.hosts[1].address: 'cp2.example.org': partitions need the IPv4 address",
                     "spec.target.kubeconfig: missing", "spec.target.strictHostKeyChecking: 'maybe'",
                     "spec.target.processes.etcd: 'etcd': anchor the pattern",
                     "spec.target.sshCommand", "spec.target.python", "spec.target.etcd.endpoints.cp1", "spec.target.etcd.ca: missing"):
        assert expected in text, expected


def test_an_experiment_file_names_file_line_and_field(tmp_path: Path) -> None:
    text = ("apiVersion: chaoslab.io/v1alpha1\nkind: Experiment\nmetadata: {name: x}\nspec:\n"
            "  target:\n    kind: ssh\n    kubeconfig: /k\n    hosts:\n"
            "      - {name: cp1, address: 10.0.0.11, port: 70000}\n"
            "  faults:\n    - {kind: kill-process, component: etcd}\n  duration: 5s\n")
    with pytest.raises(SpecError) as info:
        load_text(text, "exp.yaml")
    assert "exp.yaml:9 spec.target.hosts[0].port: 70000 is too large; the maximum is 65535" in str(info.value)


def test_resolve_and_describe_round_trip_without_secrets() -> None:
    target = resolve_target(None, "ssh", PARAMS)
    assert isinstance(target, SshTarget) and target.name == "ssh 'ssh'"
    info = target.describe()
    assert info["kind"] == "ssh" and info["params"] == PARAMS
    assert isinstance(resolve_target(None, "ssh", info["params"]), SshTarget)  # type: ignore[arg-type]


class Recorded(SshTarget):
    """Records what would run; answers pgrep/kill from a script."""

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        super().__init__(settings())
        self.ran: list[tuple[str, ...]] = []
        self.answers = answers or {}

    def _run(self, argv: Any, *, check: bool = True, stdin: str | None = None) -> str:
        self.ran.append(tuple(argv))
        for needle, answer in self.answers.items():
            if needle in argv[-1]:
                if answer == "FAIL" and check:
                    raise TargetError("exited 1")
                return answer
        return ""


def test_hold_and_heartbeat_are_refused_clearly() -> None:
    target = Recorded()
    with pytest.raises(TargetError, match="cannot keep etcd down on cp1: the kubelet"):
        target.hold("etcd", "cp1", True)
    target.hold("etcd", "cp1", False)  # releasing what was never held is fine (revert after a crash)
    with pytest.raises(TargetError, match="not supported by the ssh target"):
        target.stop_heartbeat("node-1", True)
    with pytest.raises(TargetError, match="set spec.target.clientsAddress"):
        target.clients("cp1")


def test_signal_finds_the_pid_then_kills_it_over_ssh() -> None:
    target = Recorded({"chaoslab-find": "4242\n"})
    assert target.signal("etcd", "cp2", "KILL") == 4242
    assert target.ran[-1][-1] == "sudo -n -- kill -s KILL 4242"


def test_two_matching_processes_are_refused_and_none_is_not_running() -> None:
    with pytest.raises(TargetError, match="2 processes on cp1 match"):
        Recorded({"chaoslab-find": "1\n2\n"}).pid("etcd", "cp1")
    with pytest.raises(InjectionError, match="etcd is not running on cp1"):
        Recorded({"chaoslab-find": ""}).signal("etcd", "cp1", "KILL")


def test_the_dead_mans_switch_is_armed_and_disarmed_on_each_host() -> None:
    target = Recorded()
    arm_switch(target, {"cp1": heal_partition("t1"), "cp2": heal_partition("t1")}, 70, "chaoslab-t1")
    assert [line[line.index("--") + 1] for line in target.ran] == ["10.0.0.11", "cp2.example.org"]
    remote = shlex.split(target.ran[0][-1])
    assert remote[:4] == ["setsid", "-f", "sh", "-c"] and remote[-1] == "chaoslab-t1"
    assert "iptables -w -D INPUT -j CHAOSLAB-t1" in remote[4] and "ssh" not in remote[4]
    target.ran.clear()
    disarm_switch(target, ["cp1", "cp2"], "chaoslab-t1")
    assert shlex.split(target.ran[0][-1])[-4:] == ["pkill", "-TERM", "-f", "^sh -c .* chaoslab-t1$"]
    assert len(target.ran) == 2


def test_the_lab_keeps_its_switch_on_the_local_machine() -> None:
    class Local(FakeTarget):
        def __init__(self) -> None:
            self.ran: list[Command] = []  # type: ignore[assignment]

        def host_wrap(self, host: str) -> Any:
            return lambda argv: ("ip", "netns", "exec", f"ns-{host}", *argv)

        def run_commands(self, commands: list[Command]) -> list[str]:
            self.ran.extend(commands)
            return [""]

    local = Local()
    arm_switch(local, {"cp1": heal_partition("t2")}, 70, "chaoslab-t2")  # type: ignore[arg-type]
    [switch] = local.ran
    assert switch.argv[:2] == ("setsid", "-f") and "ip netns exec ns-cp1 iptables" in switch.argv[4]


def test_the_hosts_python_is_the_targets_setting() -> None:
    assert SshTarget(settings()).python("cp1") == ("python3",)
    venv = SshTarget(settings(python=["/opt/chaoslab/bin/python", "-X", "utf8"]))
    assert venv.python("cp1") == ("/opt/chaoslab/bin/python", "-X", "utf8")


def test_shared_connections_add_only_sshs_own_options_after_the_client_prefix() -> None:
    s = settings(sshCommand=["ip", "netns", "exec", "mgmt", "ssh"], controlPersist=7)
    argv = ["sh", "-c", "echo $HOME; `id`", "x y"]
    plain = ssh_argv(s, s.hosts[1], argv)
    line = shared(s, plain, Path("/run/c"))
    assert line[:5] == ("ip", "netns", "exec", "mgmt", "ssh")
    assert line[5:11] == ("-o", "ControlMaster=auto", "-o", "ControlPath=/run/c/%C", "-o", "ControlPersist=7")
    assert line[11:] == plain[5:]  # the rest, remote command included, is exactly the unshared line
    assert shlex.split(line[-1]) == ["sudo", "-n", "--", *argv]


def test_no_sharing_with_control_persist_0_or_for_lines_that_are_not_ssh() -> None:
    off = settings(controlPersist=0)
    plain = ssh_argv(off, off.hosts[0], ["true"])
    assert shared(off, plain, Path("/run/c")) == plain
    on = settings()
    assert shared(on, ("iptables", "-w", "-S"), Path("/run/c")) == ("iptables", "-w", "-S")


def test_the_exit_line_names_the_same_socket_user_port_and_destination() -> None:
    s = settings()
    line = exit_argv(s, s.hosts[1], Path("/run/c"))
    assert line[0] == "ssh" and "ControlPath=/run/c/%C" in line
    assert line[line.index("-O"):] == ("-O", "exit", "--", "cp2.example.org")
    assert ("-p", "2222", "-l", "admin") == line[line.index("-p"):line.index("-p") + 4]


@pytest.mark.parametrize("value", [-1, 601, 1.5, True, "10"])
def test_control_persist_is_checked(value: Any) -> None:
    with pytest.raises(SpecError, match="spec.target.controlPersist"):
        settings(controlPersist=value)


def test_commands_share_a_private_socket_directory_that_close_removes(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        if "-O" in argv:
            (control / "socket").unlink(missing_ok=True)
        else:
            (control / "socket").touch()  # what the first master would leave
        return subprocess.CompletedProcess(argv, 0, "4242\n", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    target = SshTarget(settings())
    control = target.control_dir()
    assert stat.S_IMODE(control.stat().st_mode) == 0o700
    assert target.pid("etcd", "cp1") == 4242 and target.pid("etcd", "cp2") == 4242
    assert all(f"ControlPath={control}/%C" in line for line in ran) and len(ran) == 2
    ran.clear()
    target.close()
    assert [line[line.index("--") + 1] for line in ran] == ["10.0.0.11", "cp2.example.org"]
    assert all(line[line.index("-O") + 1] == "exit" for line in ran)
    assert not control.exists()
    ran.clear()
    target.close()  # idempotent, and nothing to end
    assert ran == []


def test_a_commands_stdin_reaches_the_remote_command(tmp_path: Path) -> None:
    """What ssh does with stdin (forwards it to the remote command), played by a stand-in client that runs
    the remote command string with sh, as the remote shell would: the transaction arrives whole."""
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f"#!{sys.executable}\nimport subprocess, sys\nsys.exit(subprocess.call(['sh', '-c', sys.argv[-1]]))\n")
    fake_ssh.chmod(0o755)
    target = SshTarget(settings(sshCommand=[str(fake_ssh)], controlPersist=0))
    text = "*filter\n-N CHAOSLAB-t\nCOMMIT\n"
    (out,) = target.run_commands(wrap([Command(("cat",), stdin=text)], target.host_wrap("cp1")))
    assert out == text
    # Without stdin the remote command reads nothing (never chaoslab's own terminal).
    assert target.run_commands(wrap([Command(("cat",))], target.host_wrap("cp1"))) == [""]
