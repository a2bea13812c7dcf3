"""The `ssh` target: self-managed control planes (kubeadm on VMs, bare metal) reached through the system
`ssh` client for node-level work, and through a kubeconfig and etcd endpoints for the API and probes.

    spec:
      target:
        kind: ssh
        kubeconfig: ~/.kube/config            # the API side (probes, leases, drain …)
        user: root                            # defaults for every host; each host may override them
        key: ~/.ssh/chaoslab_ed25519
        knownHosts: ~/.ssh/known_hosts         # StrictHostKeyChecking=yes against this file
        hosts:
          - {name: cp1, address: 10.0.0.11}
          - {name: cp2, address: 10.0.0.12, user: admin, sudo: true}
        etcd:
          endpoints: {cp1: "https://10.0.0.11:2379", cp2: "https://10.0.0.12:2379"}
          ca: pki/etcd/ca.crt
          cert: pki/apiserver-etcd-client.crt
          key: pki/apiserver-etcd-client.key

What runs on a host is always an argument list built by chaoslab (netrules, `kill`, `pgrep`); ssh hands
the remote side one string, so `ssh_argv` joins that list with `shlex.join` (each token quoted for the
remote POSIX shell) after refusing tokens no command of chaoslab contains (NUL, line breaks and other
control characters). Nothing typed by a user becomes shell text: host names, addresses, users and ports are
validated here and travel as ssh's own options, never inside the remote command.

Finding a component (`pid`): kubeadm runs the control plane as static pods with host networking, so on
the host the process is `kube-scheduler …` (or `/usr/local/bin/etcd …`) in the login's own network
namespace. The lookup runs `pgrep -f` with a pattern anchored to the start of the command line
(`PROCESS_PATTERNS`, overridable per component) and keeps the processes that share the network namespace
of the ssh session — on a real host that drops pods with their own network, on hosts that share one
kernel (the lab) it keeps exactly the host's own process. `runtime: crictl` asks the container runtime
instead (`crictl ps --name`, then the container's pid from `crictl inspect`). Deleting a static pod's
mirror pod through the API would kill nothing, which is why this target signals the process itself.

Connections are shared (`shared`): the first command to a host opens an OpenSSH master connection
(`ControlMaster=auto`, socket in a private 0700 directory of the target, `ControlPersist` seconds of idle
life, spec.target.controlPersist, default 10), the next commands run as sessions over it — a few
milliseconds instead of a new key exchange each (half a second to a second on a loaded machine). Only
ssh's own options change; the remote command is built exactly as without sharing. `close` ends the
masters (`ssh -O exit`) and removes the directory; the runner calls it when a run ends, and at exit.

`hold` (keep a component down) is refused: on a real host the kubelet or systemd restarts it, and moving
static pod manifests away is too invasive for an experiment. The dead-man's switch of network faults runs
on the remote host (`remote_switch`), so a partition heals itself even when the host is cut off from
chaoslab.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from chaoslab.clients.etcd import EtcdMember, Tls
from chaoslab.clients.hosts import Argv, Command, Endpoint, Wrap
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError, SpecError, TargetError
from chaoslab.targets import CertificateLink, TargetBase, kubeadm

__all__ = ["PROCESS_PATTERNS", "SshHost", "SshSettings", "SshTarget", "config_problems", "exit_argv", "shared",
           "ssh_argv"]

COMPONENTS = ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager")
PROCESS_PATTERNS = {c: f"^([^ ]*/)?{c}( |$)" for c in COMPONENTS}
"""`pgrep -f` patterns (POSIX extended regex over the whole command line) that find each component on a
kubeadm host: the program name first, with or without a directory. Anchored, so the lookup's own shell,
a `sudo` or a `tail -f /var/log/…kube-scheduler…` never match."""

HostKeyChecking = Literal["yes", "accept-new", "no"]
Runtime = Literal["process", "crictl"]

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_SIGNALS = ("KILL", "TERM", "STOP", "CONT")

# Fixed script for `pid`: the pattern arrives as "$1", never inside the script. Keeps the matches that
# share the session's network namespace (see the module docstring), and never the script itself.
_FIND = ('me=$(readlink /proc/self/ns/net); for p in $(pgrep -f -- "$1"); do [ "$p" != "$$" ] && '
         '[ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$me" ] && echo "$p"; done; true')


@dataclass(frozen=True)
class SshHost:
    """One control-plane host as ssh reaches it."""

    name: str
    """The host's name in experiments and reports (cp1); also the etcd member name."""
    address: str
    """Where ssh connects (IP or DNS name)."""
    peer_address: str
    """IPv4 address its peers reach it on (partitions match it); default: `address` when that is one."""
    user: str = "root"
    port: int = 22
    key: Path | None = None
    """Private key file (`ssh -i`); default: the ssh client's own choice (agent, ~/.ssh/id_*)."""
    sudo: bool = False
    """Prefix every remote command with `sudo -n --` (passwordless sudo required)."""


@dataclass(frozen=True)
class EtcdSettings:
    endpoints: Mapping[str, str]
    """Member name → client URL (https://host:2379), as reached from chaoslab."""
    tls: Tls


@dataclass(frozen=True)
class EtcdDiscovery:
    """`etcd: {discover: kubeadm}`: endpoints and TLS from the kube-apiserver static pod's flags, the files
    fetched over ssh; what is given beside `discover` wins."""

    endpoints: Mapping[str, str] = field(default_factory=dict)
    """Member name → client URL; default: the flags' URLs, named by the host whose address they name."""
    tls: Tls | None = None
    """Local copies of the CA, client certificate and key; default: fetched from a control-plane host."""


@dataclass(frozen=True)
class SshSettings:
    """`spec.target` of kind ssh, validated (`from_params`)."""

    hosts: tuple[SshHost, ...]
    kubeconfig: Path
    context: str | None = None
    name: str = "ssh"
    known_hosts: Path | None = None
    """`UserKnownHostsFile`; default: the client's own (~/.ssh/known_hosts)."""
    strict_host_key_checking: HostKeyChecking = "yes"
    connect_timeout: int = 5
    """Seconds for the TCP connection and key exchange (`ConnectTimeout`, default 5)."""
    command_timeout: float = 30.0
    """Seconds one remote command may take, connection included (default 30)."""
    ssh_command: tuple[str, ...] = ("ssh",)
    """The ssh client's argv prefix (default `ssh`), e.g. to run it from another network namespace."""
    python: tuple[str, ...] = ("python3",)
    """The hosts' Python with chaoslab installed, as argv (default `python3`): the helpers chaoslab starts
    on a host (disk-latency's tracer, network-degrade's delayer) are its modules."""
    components: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Component → the hosts running it; default every host runs all four."""
    processes: Mapping[str, str] = field(default_factory=dict)
    """Component → `pgrep -f` pattern overriding `PROCESS_PATTERNS`."""
    runtime: Runtime = "process"
    apiservers: Mapping[str, str] = field(default_factory=dict)
    """Host → that apiserver's URL, for per-apiserver probes."""
    etcd: EtcdSettings | None = None
    etcd_discovery: EtcdDiscovery | None = None
    """Set when `etcd.discover: kubeadm` (then `etcd` is None until the target discovers it)."""
    clients_address: str | None = None
    """IPv4 address clients (load balancer, users, chaoslab) reach the hosts from, for `clients: true`."""
    interface: str | None = None
    """The hosts' interface toward their peers, for netem delays."""
    renewal_window: float = 5.0
    """Seconds without a Lease renewal after which a leader counts as gone (default 5: 2 × 2 s + 1)."""
    control_persist: int = 10
    """Seconds an idle shared connection to a host stays open (`ControlPersist`, default 10); 0 gives every
    command its own connection."""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str = "spec.target") -> SshSettings:
        """Validated settings, or `SpecError` listing every problem as `where.field: message`."""
        settings, problems = _parse(params)
        if problems or settings is None:
            raise SpecError([f"{where}{'.' + p if p else ''}: {m}" for p, m in problems])
        return settings

    def host(self, name: str) -> SshHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise TargetError(f"ssh target {self.name!r} has no host {name!r}; hosts: "
                          f"{', '.join(h.name for h in self.hosts)}")


def config_problems(params: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """(field path under spec.target, message) for every problem of an ssh target's parameters (the
    loader turns the path into `FILE:LINE spec.target.hosts[1].port`)."""
    return [(_path(p), m) for p, m in _parse(params)[1]]


def _path(dotted: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


_KNOWN = {"kind", "name", "kubeconfig", "context", "hosts", "user", "port", "key", "sudo", "knownHosts",
          "strictHostKeyChecking", "connectTimeout", "commandTimeout", "sshCommand", "python", "components", "processes",
          "runtime", "apiservers", "etcd", "clientsAddress", "interface", "renewalWindow", "controlPersist"}
_HOST_KNOWN = {"name", "address", "peerAddress", "user", "port", "key", "sudo"}


def _ipv4(value: object) -> bool:
    try:
        ipaddress.IPv4Address(str(value))
    except ValueError:
        return False
    return True


def _parse(params: Mapping[str, Any]) -> tuple[SshSettings | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []

    def bad(path: str, message: str) -> None:
        problems.append((path, message))

    for unknown in sorted(set(params) - _KNOWN):
        bad(unknown, f"unknown field; an ssh target takes {', '.join(sorted(_KNOWN - {'kind'}))}")

    def path_of(value: Any, where: str) -> Path | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            bad(where, f"{value!r} is not a file path")
            return None
        return Path(os.path.expanduser(value))

    def user_of(value: Any, where: str) -> str:
        if not isinstance(value, str) or not _USER.match(value):
            bad(where, f"{value!r} is not a user name (lowercase letters, digits, '_', '.', '-')")
            return "root"
        return value

    def port_of(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            bad(where, f"{value!r} is not a TCP port (1-65535)")
            return 22
        return value

    def flag_of(value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            bad(where, f"{value!r} is not true or false")
            return False
        return value

    user = user_of(params.get("user", "root"), "user")
    port = port_of(params.get("port", 22), "port")
    key = path_of(params.get("key"), "key")
    sudo = flag_of(params.get("sudo", False), "sudo")

    hosts: list[SshHost] = []
    raw_hosts = params.get("hosts")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        bad("hosts", "give a list of hosts, e.g. [{name: cp1, address: 10.0.0.11}]")
        raw_hosts = []
    for i, h in enumerate(raw_hosts):
        at = f"hosts[{i}]"
        if not isinstance(h, Mapping):
            bad(at, f"{h!r} is not a mapping with name and address")
            continue
        for k in sorted(set(h) - _HOST_KNOWN):
            bad(f"{at}.{k}", f"unknown field; a host takes {', '.join(sorted(_HOST_KNOWN))}")
        name, address = h.get("name"), h.get("address")
        if not isinstance(name, str) or not _NAME.match(name):
            bad(f"{at}.name", f"{name!r} is not a host name (lowercase letters, digits, '-')")
            name = f"host{i}"
        elif name in {x.name for x in hosts}:
            bad(f"{at}.name", f"{name!r} is named twice")
        if not isinstance(address, str) or not (_ipv4(address) or _HOSTNAME.match(address)):
            bad(f"{at}.address", f"{address!r} is not an IPv4 address or DNS name")
            address = "0.0.0.0"
        peer = h.get("peerAddress", address)
        if not _ipv4(peer):
            bad(f"{at}.peerAddress" if "peerAddress" in h else f"{at}.address",
                f"{peer!r}: partitions need the IPv4 address peers reach the host on; set peerAddress")
            peer = "0.0.0.0"
        hosts.append(SshHost(name, address, str(peer), user_of(h.get("user", user), f"{at}.user"),
                             port_of(h.get("port", port), f"{at}.port"),
                             path_of(h.get("key"), f"{at}.key") if "key" in h else key,
                             flag_of(h.get("sudo", sudo), f"{at}.sudo")))
    names = {h.name for h in hosts}

    kubeconfig = path_of(params.get("kubeconfig"), "kubeconfig")
    if kubeconfig is None and "kubeconfig" not in params:
        bad("kubeconfig", "missing; name the kubeconfig chaoslab reaches the API with")
    context = params.get("context")
    if context is not None and not isinstance(context, str):
        bad("context", f"{context!r} is not a context name")
    strict = params.get("strictHostKeyChecking", "yes")
    if strict not in ("yes", "accept-new", "no"):
        bad("strictHostKeyChecking", f"{strict!r} is not one of yes, accept-new, no")
    timeouts = {}
    for field_name, default in (("connectTimeout", 5), ("commandTimeout", 30), ("renewalWindow", 5)):
        value = params.get(field_name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            bad(field_name, f"{value!r} is not a number of seconds (above 0, at most 3600)")
            value = default
        timeouts[field_name] = value
    persist = params.get("controlPersist", 10)
    if isinstance(persist, bool) or not isinstance(persist, int) or not 0 <= persist <= 600:
        bad("controlPersist", f"{persist!r} is not a whole number of seconds (0 to 600; 0: no shared connection)")
        persist = 10
    ssh_command = params.get("sshCommand", ["ssh"])
    if (not isinstance(ssh_command, list) or not ssh_command
            or not all(isinstance(t, str) and t and not _UNSAFE.search(t) for t in ssh_command)):
        bad("sshCommand", f"{ssh_command!r}: give the ssh client as a list of arguments, e.g. [ssh]")
        ssh_command = ["ssh"]
    python = params.get("python", ["python3"])
    if (not isinstance(python, list) or not python
            or not all(isinstance(t, str) and t and not _UNSAFE.search(t) for t in python)):
        bad("python", f"{python!r}: give the hosts' Python (with chaoslab installed) as a list of arguments, "
                      f"e.g. [/opt/chaoslab/bin/python]")
        python = ["python3"]

    components: dict[str, tuple[str, ...]] = {}
    for comp, on in (params.get("components") or {}).items():
        if comp not in COMPONENTS:
            bad(f"components.{comp}", f"not one of {', '.join(COMPONENTS)}")
        elif not isinstance(on, list) or not on or any(x not in names for x in on):
            bad(f"components.{comp}", f"{on!r}: give a list of host names among {', '.join(sorted(names))}")
        else:
            components[comp] = tuple(on)
    processes: dict[str, str] = {}
    for comp, pattern in (params.get("processes") or {}).items():
        if comp not in COMPONENTS:
            bad(f"processes.{comp}", f"not one of {', '.join(COMPONENTS)}")
        elif not isinstance(pattern, str) or not pattern or _UNSAFE.search(pattern):
            bad(f"processes.{comp}", f"{pattern!r} is not a pgrep pattern")
        elif not pattern.startswith("^"):
            bad(f"processes.{comp}", f"{pattern!r}: anchor the pattern with '^' (an unanchored one also "
                                     f"matches the lookup's own command line)")
        else:
            processes[comp] = pattern
    runtime = params.get("runtime", "process")
    if runtime not in ("process", "crictl"):
        bad("runtime", f"{runtime!r} is not one of process, crictl")
    apiservers = dict(params.get("apiservers") or {})
    for h, url in apiservers.items():
        if h not in names:
            bad(f"apiservers.{h}", f"no host {h!r}; hosts: {', '.join(sorted(names))}")
        elif not isinstance(url, str) or urlsplit(url).scheme != "https":
            bad(f"apiservers.{h}", f"{url!r} is not an https:// URL")

    etcd = None
    discovery = None
    raw_etcd = params.get("etcd")
    if isinstance(raw_etcd, Mapping) and "discover" in raw_etcd:
        discovery = _discovery(raw_etcd, bad, path_of)
    elif raw_etcd is not None:
        if not isinstance(raw_etcd, Mapping):
            bad("etcd", "give endpoints, ca, cert and key, or discover: kubeadm")
        else:
            endpoints = raw_etcd.get("endpoints")
            if not isinstance(endpoints, Mapping) or not endpoints:
                bad("etcd.endpoints", "give member name → https://HOST:2379 for every etcd member")
                endpoints = {}
            for member, url in endpoints.items():
                parts = urlsplit(url) if isinstance(url, str) else None
                if parts is None or parts.scheme != "https" or not parts.hostname or not parts.port:
                    bad(f"etcd.endpoints.{member}", f"{url!r} is not an https://HOST:PORT URL")
            files = {k: path_of(raw_etcd.get(k), f"etcd.{k}") for k in ("ca", "cert", "key")}
            for k, v in files.items():
                if v is None:
                    bad(f"etcd.{k}", "missing; etcd probes need the CA, a client certificate and its key")
            if all(files.values()):
                etcd = EtcdSettings(dict(endpoints), Tls(files["ca"], files["cert"], files["key"]))  # type: ignore[arg-type]
    clients = params.get("clientsAddress")
    if clients is not None and not _ipv4(clients):
        bad("clientsAddress", f"{clients!r} is not an IPv4 address")
    interface = params.get("interface")
    if interface is not None and (not isinstance(interface, str) or not _IFNAME.match(interface)):
        bad("interface", f"{interface!r} is not an interface name")
    name = params.get("name", "ssh")
    if not isinstance(name, str) or not _NAME.match(name):
        bad("name", f"{name!r}: use lowercase letters, digits and '-'")
        name = "ssh"
    if problems or kubeconfig is None:
        return None, problems
    return SshSettings(
        hosts=tuple(hosts), kubeconfig=kubeconfig, context=context, name=name,
        known_hosts=path_of(params.get("knownHosts"), "knownHosts"), strict_host_key_checking=strict,
        connect_timeout=int(timeouts["connectTimeout"]), command_timeout=float(timeouts["commandTimeout"]),
        ssh_command=tuple(ssh_command), python=tuple(python), components=components, processes=processes, runtime=runtime,
        apiservers=apiservers, etcd=etcd, etcd_discovery=discovery, clients_address=clients, interface=interface,
        renewal_window=float(timeouts["renewalWindow"]), control_persist=persist, raw=dict(params)), []


def _discovery(raw: Mapping[str, Any], bad: Any, path_of: Any) -> EtcdDiscovery | None:
    """`etcd: {discover: kubeadm, endpoints?, ca?, cert?, key?}`, checked field by field."""
    ok = True
    if raw.get("discover") != "kubeadm":
        bad("etcd.discover", f"{raw.get('discover')!r} is not kubeadm")
        ok = False
    for k in sorted(set(raw) - {"discover", "endpoints", "ca", "cert", "key"}):
        bad(f"etcd.{k}", "unknown field; with discover: kubeadm give endpoints, ca, cert, key (all optional)")
        ok = False
    endpoints = raw.get("endpoints") or {}
    if not isinstance(endpoints, Mapping):
        bad("etcd.endpoints", "give member name → https://HOST:2379")
        endpoints, ok = {}, False
    for member, url in endpoints.items():
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme != "https" or not parts.hostname or not parts.port:
            bad(f"etcd.endpoints.{member}", f"{url!r} is not an https://HOST:PORT URL")
            ok = False
    files = {k: path_of(raw.get(k), f"etcd.{k}") for k in ("ca", "cert", "key")}
    given = [k for k, v in files.items() if v is not None]
    if given and len(given) != 3:
        bad("etcd", f"{', '.join(given)} given without {', '.join(k for k in files if k not in given)}: give all "
                    f"three local copies, or none to fetch them from a control-plane host over ssh")
        ok = False
    if not ok:
        return None
    tls = Tls(files["ca"], files["cert"], files["key"]) if len(given) == 3 else None
    return EtcdDiscovery(dict(endpoints), tls)


# ---- command building (pure) ---------------------------------------------------------------------------


def remote_command(host: SshHost, argv: Sequence[str]) -> str:
    """The one string ssh hands the remote shell: `argv` quoted token by token (and `sudo -n --` first
    when the host needs it). Refuses tokens with control characters: no chaoslab command has them, and a
    line break would be the easiest way to smuggle a second command past a careless reader."""
    if not argv:
        raise ValueError("empty command")
    if bad := [t for t in argv if not isinstance(t, str) or _UNSAFE.search(t)]:
        raise ValueError(f"command {list(argv)!r}: unsafe token(s) {bad!r} (control characters)")
    return shlex.join([*(("sudo", "-n", "--") if host.sudo else ()), *argv])


def ssh_argv(settings: SshSettings, host: SshHost, argv: Sequence[str]) -> Argv:
    """The local command line that runs `argv` on `host`: the ssh client with every option spelled out
    (no interactive prompt can ever block a run: BatchMode), then `--`, the destination, and the remote
    command as one quoted string.

        >>> s = SshSettings(hosts=(SshHost("cp1", "10.0.0.11", "10.0.0.11"),), kubeconfig=Path("kc"))
        >>> ssh_argv(s, s.hosts[0], ["iptables", "-w", "-S"])[-2:]
        ('10.0.0.11', 'iptables -w -S')
    """
    options = ["-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={settings.connect_timeout}",
               "-o", f"StrictHostKeyChecking={settings.strict_host_key_checking}", "-o", "LogLevel=ERROR",
               "-p", str(host.port), "-l", host.user]
    if settings.known_hosts is not None:
        options += ["-o", f"UserKnownHostsFile={settings.known_hosts}"]
    if host.key is not None:
        options += ["-i", str(host.key), "-o", "IdentitiesOnly=yes"]
    return (*settings.ssh_command, *options, "--", host.address, remote_command(host, argv))


def shared(settings: SshSettings, argv: Sequence[str], control: Path) -> Argv:
    """An `ssh_argv` line that shares one connection per host (OpenSSH multiplexing): the first command to a
    host starts a master in the background, the next ones run as sessions over it, and the master ends
    after `control_persist` idle seconds (or at `exit_argv`). The sockets live in `control`, a private
    directory of the target (0700); `%C` is OpenSSH's hash of host, port and user. The remote command is
    untouched: only ssh's own options are added, right after the client's argv prefix.

        >>> s = SshSettings(hosts=(SshHost("cp1", "10.0.0.11", "10.0.0.11"),), kubeconfig=Path("kc"))
        >>> shared(s, ssh_argv(s, s.hosts[0], ["true"]), Path("/tmp/c"))[1:7]
        ('-o', 'ControlMaster=auto', '-o', 'ControlPath=/tmp/c/%C', '-o', 'ControlPersist=10')
    """
    n = len(settings.ssh_command)
    if settings.control_persist <= 0 or tuple(argv[:n]) != settings.ssh_command or "--" not in argv[n:]:
        return tuple(argv)
    return (*argv[:n], *control_options(control, settings.control_persist), *argv[n:])


def control_options(control: Path, persist: int) -> list[str]:
    return ["-o", "ControlMaster=auto", "-o", f"ControlPath={control}/%C", "-o", f"ControlPersist={persist}"]


def exit_argv(settings: SshSettings, host: SshHost, control: Path) -> Argv:
    """The line that ends `host`'s master connection (`ssh -O exit`); same user, port and destination, so
    `%C` names the same socket."""
    return (*settings.ssh_command, "-o", f"ControlPath={control}/%C", "-o", "LogLevel=ERROR", "-p", str(host.port),
            "-l", host.user, "-O", "exit", "--", host.address)


def find_pid_argv(pattern: str) -> Argv:
    """The remote command listing the pids that match `pattern` in the session's network namespace."""
    return ("sh", "-c", _FIND, "chaoslab-find", pattern)


def crictl_argv(component: str) -> Argv:
    return ("crictl", "ps", "--quiet", "--state", "running", "--name", f"^{component}$")


def crictl_pid_argv(container: str) -> Argv:
    if not re.fullmatch(r"[0-9a-f]{8,64}", container):
        raise ValueError(f"container id {container!r} is not hexadecimal")
    return ("crictl", "inspect", "--output", "go-template", "--template", "{{.info.pid}}", container)


# ---- the target ------------------------------------------------------------------------------------------


class SshTarget(TargetBase):
    kind = "ssh"
    """Hosts over ssh, the API through a kubeconfig, etcd members through their endpoints."""

    remote_switch = True
    """Network faults arm their dead-man's switch on each host (over ssh), not on chaoslab's machine."""

    def __init__(self, settings: SshSettings) -> None:
        self.settings = settings
        self.name = f"ssh {settings.name!r}"
        self.renewal_window = settings.renewal_window
        self._api: KubeApi | None = None
        self._control: Path | None = None
        self._private: Path | None = None
        """Fetched etcd client files (`etcd: {discover: kubeadm}`), removed by `close`."""
        self._etcd: EtcdSettings | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SshTarget:
        return cls(SshSettings.from_params(params))  # checks its own settings, field by field

    def describe(self) -> dict[str, object]:
        # Paths and addresses only: an ssh target's settings hold no secret, only where the key file is.
        return {"kind": "ssh", "name": self.name, "params": dict(self.settings.raw),
                "renewal_window": self.renewal_window}

    def python(self, host: str) -> tuple[str, ...]:
        """The target's `python` setting (default `python3`): disk-latency's tracer and network-degrade's
        delayer (kernels without netem) are chaoslab modules, so chaoslab must be installed there; where it
        is not, the fault fails with Python's own message."""
        return self.settings.python

    @property
    def allow_names(self) -> dict[str, list[str]]:
        """What an allow-list may name to let chaoslab act on these hosts: the target's name (as a context),
        and every host's name and address."""
        hosts = [n for h in self.settings.hosts for n in (h.name, h.address)]
        return {"contexts": [self.settings.name], "hosts": list(dict.fromkeys(hosts))}

    # ---- API side ----------------------------------------------------------------------------------
    def api(self) -> KubeApi:
        if self._api is None:
            try:
                self._api = KubeApi.from_kubeconfig(self.settings.kubeconfig, self.settings.context, timeout=2.0)
            except (OSError, ValueError) as exc:
                raise TargetError(f"{self.name}: cannot use kubeconfig {self.settings.kubeconfig} ({exc})") from exc
        return self._api

    def apiserver_endpoints(self) -> Mapping[str, str]:
        return {"lb": self.api().server, **self.settings.apiservers}

    def etcd_members(self, timeout: float = 1.0) -> dict[str, EtcdMember]:
        etcd = self.settings.etcd or self._discovered_etcd()
        if etcd is None:
            raise TargetError(f"{self.name}: no etcd endpoints; set spec.target.etcd (endpoints, ca, cert, key, "
                              f"or discover: kubeadm)")
        out = {}
        for name, url in etcd.endpoints.items():
            parts = urlsplit(url)
            out[name] = EtcdMember(name, parts.hostname or "", parts.port or 2379, etcd.tls, timeout)
        return out

    def _discovered_etcd(self) -> EtcdSettings | None:
        """`etcd: {discover: kubeadm}`: found once, on first use. The endpoints come from the kube-apiserver
        mirror pods' `--etcd-servers` (loopback turned into each pod's host IP) and are named after the host
        whose address or peerAddress they name; the CA, client certificate and key named by the flags are
        copied (`kubeadm.fetch_tls`: `cat` over ssh, sudo as the host says) from a host that runs an
        apiserver into a private directory (0700, files 0600) that `close` removes."""
        found = self.settings.etcd_discovery
        if found is None:
            return None
        with self._lock:
            if self._etcd is not None:
                return self._etcd
        flags = kubeadm.discover(self.api())
        endpoints = dict(found.endpoints) or self._name_endpoints(flags.endpoints)
        tls = found.tls
        if tls is None:
            source = self._tls_source(flags.nodes)
            paths = kubeadm.fetch_tls(self, source, flags, self._private_dir() / "etcd")
            tls = Tls(paths["ca"], paths["cert"], paths["key"])
        with self._lock:
            self._etcd = EtcdSettings(endpoints, tls)
            return self._etcd

    def _name_endpoints(self, urls: Sequence[str]) -> dict[str, str]:
        by_address = {a: h.name for h in self.settings.hosts for a in (h.address, h.peer_address)}
        out: dict[str, str] = {}
        for url in urls:
            name = by_address.get(urlsplit(url).hostname or "")
            if name is None:
                raise TargetError(f"{self.name}: etcd endpoint {url} (from the kube-apiserver pods' --etcd-servers) "
                                  f"names no host's address or peerAddress; name the members in "
                                  f"spec.target.etcd.endpoints")
            out[name] = url
        return out

    def _tls_source(self, nodes: Sequence[str]) -> str:
        """The host to copy the etcd client files from: one whose apiserver pod was read, else the first."""
        names = [h.name for h in self.settings.hosts]
        for node in nodes:
            for candidate in (node, node.split(".", 1)[0]):
                if candidate in names:
                    return candidate
        return names[0]

    def _private_dir(self) -> Path:
        with self._lock:
            if self._private is None:
                self._private = Path(tempfile.mkdtemp(prefix="chaoslab-etcd-"))
                atexit.register(self.close)
            return self._private

    # ---- hosts ---------------------------------------------------------------------------------------
    def hosts(self, component: str) -> list[str]:
        return list(self.settings.components.get(component, tuple(h.name for h in self.settings.hosts)))

    def endpoint(self, host: str) -> Endpoint:
        return Endpoint(host, self.settings.host(host).peer_address, device=self.settings.interface)

    def clients(self, host: str) -> Endpoint:
        self.settings.host(host)
        if self.settings.clients_address is None:
            raise TargetError(f"{self.name}: where clients come from is not known; set spec.target.clientsAddress "
                              f"(the load balancer's address as the hosts see it) to cut hosts from clients")
        return Endpoint("clients", self.settings.clients_address, managed=False)

    def host_wrap(self, host: str) -> Wrap:
        h = self.settings.host(host)
        return lambda argv: ssh_argv(self.settings, h, argv)

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        return [self._run(c.argv, check=not c.may_fail, stdin=c.stdin) for c in commands]

    def control_dir(self) -> Path:
        """The private directory of this target's shared-connection sockets, made on first use (0700, so no
        other user can reach a master through it); `close` removes it."""
        with self._lock:
            if self._control is None:
                # A socket path has at most 107 bytes: a long $TMPDIR would leave no room for the 40-byte %C.
                base = tempfile.gettempdir()
                self._control = Path(tempfile.mkdtemp(prefix="chaoslab-ssh-", dir=base if len(base) <= 40 else "/tmp"))
                atexit.register(self.close)
            return self._control

    def close(self) -> None:
        """End every shared connection (`ssh -O exit` to each host that has one) and remove the socket
        directory, and the etcd client files it fetched. Idempotent; also run at interpreter exit. Masters end by themselves `controlPersist`
        seconds after their last command anyway."""
        with self._lock:
            control, self._control = self._control, None
            private, self._private, self._etcd = self._private, None, None
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
        if control is None:
            return
        if any(control.iterdir()):
            for host in self.settings.hosts:
                try:
                    subprocess.run(list(exit_argv(self.settings, host, control)), capture_output=True,
                                   stdin=subprocess.DEVNULL, timeout=self.settings.connect_timeout + 5, check=False)
                except (OSError, subprocess.TimeoutExpired):
                    pass  # no master for this host, or the client is gone: the master times out by itself
        shutil.rmtree(control, ignore_errors=True)

    def _run(self, argv: Sequence[str], *, check: bool = True, stdin: str | None = None) -> str:
        """Run a wrapped command line; `stdin` goes to the remote command (ssh -T forwards it, sudo passes it
        on), else it reads nothing."""
        where = _destination(argv)
        if self.settings.control_persist > 0:
            argv = shared(self.settings, argv, self.control_dir())
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, input=stdin,
                                  stdin=subprocess.DEVNULL if stdin is None else None,
                                  timeout=self.settings.command_timeout)
        except FileNotFoundError as exc:
            raise TargetError(f"{self.name}: {argv[0]} not found; install the OpenSSH client") from exc
        except subprocess.TimeoutExpired as exc:
            raise TargetError(f"{self.name}: `{_shown(argv)}`{where} did not finish within "
                              f"{self.settings.command_timeout:g} s") from exc
        if check and proc.returncode != 0:
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            hint = ("; check that ssh reaches it (address, user, key, known_hosts)" if proc.returncode == 255
                    else "; run as root there or set sudo: true for the host" if "ermission denied" in tail
                    else "")
            raise TargetError(f"{self.name}: `{_shown(argv)}`{where} exited {proc.returncode}: {tail}{hint}")
        return proc.stdout

    def run_on(self, host: str, argv: Sequence[str], *, check: bool = True) -> str:
        """Run one command on `host` and return its standard output."""
        return self._run(self.host_wrap(host)(argv), check=check)

    # ---- processes -------------------------------------------------------------------------------------
    def pid(self, component: str, host: str) -> int | None:
        if component not in COMPONENTS:
            raise TargetError(f"{self.name}: unknown component {component!r}")
        if self.settings.runtime == "crictl":
            ids = self.run_on(host, crictl_argv(component)).split()
            if not ids:
                return None
            if len(ids) > 1:
                raise TargetError(f"{self.name}: {len(ids)} running {component} containers on {host}: {ids}")
            out = self.run_on(host, crictl_pid_argv(ids[0])).strip()
            return int(out) if out.isdigit() and int(out) > 0 else None
        pattern = self.settings.processes.get(component, PROCESS_PATTERNS[component])
        pids = [int(x) for x in self.run_on(host, find_pid_argv(pattern)).split() if x.isdigit()]
        if len(pids) > 1:
            raise TargetError(f"{self.name}: {len(pids)} processes on {host} match {pattern!r} "
                              f"(pids {', '.join(map(str, pids))}); narrow spec.target.processes.{component}")
        return pids[0] if pids else None

    def signal(self, component: str, host: str, signal: str) -> int:
        if signal not in _SIGNALS:
            raise InjectionError(f"signal {signal!r} is not one of {', '.join(_SIGNALS)}")
        pid = self.pid(component, host)
        if pid is None:
            raise InjectionError(f"{component} is not running on {host} ({self.name}); check "
                                 f"`pgrep -af {component}` there, or spec.target.processes.{component}")
        try:
            self.run_on(host, ("kill", "-s", signal, str(pid)))
        except TargetError as exc:
            raise InjectionError(f"kill -s {signal} {pid} ({component} on {host}) failed: {exc}") from exc
        return pid

    def component_log(self, component: str, host: str) -> str:
        raise TargetError(f"{self.name} cannot read the log of {component} on {host}: not supported by the ssh "
                          f"target yet (the run has no ground truth from component logs)")

    def hold(self, component: str, host: str, held: bool) -> None:
        if held:
            raise TargetError(f"{self.name} cannot keep {component} down on {host}: the kubelet (static pod) "
                              f"or systemd restarts it; use signal: STOP to pause it for the fault's duration")

    def stop_heartbeat(self, node: str, stopped: bool) -> None:
        raise TargetError(f"stopping the heartbeat of node {node!r} is not supported by the ssh target: "
                          f"it reaches control-plane hosts only")

    def certificate(self, link: str) -> CertificateLink:
        raise TargetError(f"{self.name}: reissuing the {link} certificate is not supported by the ssh target "
                          f"yet; use the lab")

    def service_host(self) -> tuple[Wrap, str]:
        raise TargetError(f"{self.name}: running a webhook server the apiservers reach is not supported by the "
                          f"ssh target yet; use the lab")

    @property
    def lock_path(self) -> Path:
        base = Path(os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"))
        return base / "chaoslab" / "targets" / f"ssh-{self.settings.name}.lock"


def _destination(argv: Sequence[str]) -> str:
    """` on HOST` for an ssh command line (the token after `--`), else empty."""
    try:
        return f" on {argv[list(argv).index('--') + 1]}"
    except (ValueError, IndexError):
        return ""


def _shown(argv: Sequence[str]) -> str:
    """The remote command of an ssh command line (what matters in a message), else the whole line."""
    return argv[-1] if _destination(argv) else " ".join(argv)
