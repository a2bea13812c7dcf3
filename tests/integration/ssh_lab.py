"""Lab glue for the ssh target's integration tests: a real OpenSSH server in every lab host, and a
management namespace from which a real ssh client reaches them over the lab network.

    root namespace          chaoslab-<lab>-ssh (10.213.0.3)     chaoslab-<lab>-net     chaoslab-<lab>-cpN
    ip netns exec … ssh ───▶ mg0 ── veth ──────────────────────▶ br0 ─────────────────▶ eth0 sshd :22

The management address is neither a host nor the clients' address, so partitions (which drop packets of
those addresses only) never cut chaoslab's ssh sessions — as on a real cluster with a management network.
The ssh client runs in that namespace through the target's `sshCommand` ([ip, netns, exec, NS, ssh]); the
target itself knows nothing of namespaces. Each sshd has its own config, a generated ed25519 host key
(pinned in a known_hosts file, so StrictHostKeyChecking=yes holds) and accepts one generated client key
for root, no passwords. `stop()` ends the sshds, deletes the namespace and the key directory; a session
interrupted before `stop()` leaves nothing that the next one does not clear (the keys live in the lab's
state directory, the namespace is replaced).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslab.lab.config import LabLayout
from chaoslab.lab.network import BRIDGE, HOST_DEVICE, NETNS_DIR

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")
"""sshd refuses to start without its privilege-separation directory (Debian creates it at boot)."""


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


@dataclass
class SshLab:
    layout: LabLayout
    tmp: Path = field(init=False)
    sshds: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    made_privsep: bool = False

    def __post_init__(self) -> None:
        # Inside the lab's state directory: the next `lab down` removes the keys of an interrupted session.
        self.tmp = Path(tempfile.mkdtemp(prefix="ssh-", dir=self.layout.state_dir))

    @property
    def netns(self) -> str:
        return f"{self.layout.prefix}-ssh"

    @property
    def address(self) -> str:
        """The lab's management address: its own (it was the client address + 1, which is the service
        address, where the webhook server listens; after these tests the hosts' stale neighbour entry for
        it sent the apiservers' webhook calls to a namespace that was gone)."""
        return self.layout.management_address

    @property
    def client_key(self) -> Path:
        return self.tmp / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.tmp / "known_hosts"

    def start(self) -> SshLab:
        self.tmp.chmod(0o700)
        if not PRIVSEP_DIR.exists():
            PRIVSEP_DIR.mkdir(mode=0o755)
            self.made_privsep = True
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "chaoslab-test-client", "-f", str(self.client_key))
        shutil.copy(self.client_key.with_suffix(".pub"), self.tmp / "authorized_keys")
        known = []
        for host in self.layout.hosts:
            key = self.tmp / f"host_{host.name}_ed25519"
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key))
            known.append(f"{host.address} {' '.join(key.with_suffix('.pub').read_text().split()[:2])}")
            config = self.tmp / f"sshd_{host.name}.conf"
            config.write_text("\n".join([
                f"ListenAddress {host.address}:22", f"HostKey {key}", f"PidFile {self.tmp}/sshd_{host.name}.pid",
                f"AuthorizedKeysFile {self.tmp}/authorized_keys", "PermitRootLogin prohibit-password",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "AllowTcpForwarding no", "X11Forwarding no", "PrintMotd no", "LogLevel ERROR", ""]))
            run(SSHD, "-t", "-f", str(config))
            log = (self.tmp / f"sshd_{host.name}.log").open("ab")
            self.sshds[host.name] = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.known_hosts.write_text("\n".join(known) + "\n")
        self._management_namespace()
        self._wait()
        return self

    def _management_namespace(self) -> None:
        ns, sw = self.netns, self.layout.switch_netns
        peer = f"{self.layout.config.name}-mg"[:15]
        if (NETNS_DIR / ns).exists():  # left by an interrupted earlier session (its peer went with the lab)
            run("ip", "netns", "del", ns)
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "link", "add", "mg0", "type", "veth", "peer", "name", peer, "netns", sw)
        run("ip", "-n", ns, "addr", "add", f"{self.address}/{self.layout.prefix_len}", "dev", "mg0")
        run("ip", "-n", ns, "link", "set", "mg0", "up")
        run("ip", "-n", sw, "link", "set", peer, "master", BRIDGE)
        run("ip", "-n", sw, "link", "set", peer, "up")

    def ssh_command(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns, "ssh"]

    def _wait(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        for host in self.layout.hosts:
            while True:
                proc = subprocess.run([*self.ssh_command(), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                                       "-o", f"UserKnownHostsFile={self.known_hosts}", "-i", str(self.client_key),
                                       "-o", "ConnectTimeout=2", "-l", "root", "--", host.address, "true"],
                                      capture_output=True, text=True, timeout=10, check=False)
                if proc.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd on {host.name} never answered: {proc.stderr.strip()}")
                time.sleep(0.2)

    def target_params(self, **extra: Any) -> dict[str, Any]:
        """`spec.target` of an ssh target for this lab, as a user would write it."""
        lab, pki = self.layout, self.layout.pki_dir
        return {
            "kind": "ssh", "name": f"{lab.config.name}-ssh", "kubeconfig": str(lab.kubeconfig),
            "user": "root", "key": str(self.client_key), "knownHosts": str(self.known_hosts),
            "sshCommand": self.ssh_command(),
            "hosts": [{"name": h.name, "address": h.address} for h in lab.hosts],
            "components": {"kube-apiserver": [h.name for h in lab.apiserver_hosts]},
            "apiservers": {h.name: lab.apiserver_host_url(h) for h in lab.apiserver_hosts},
            "etcd": {"endpoints": lab.etcd_endpoints(), "ca": str(pki / "ca.crt"),
                     "cert": str(pki / "admin.crt"), "key": str(pki / "admin.key")},
            "clientsAddress": lab.client_address, "interface": HOST_DEVICE,
            "renewalWindow": 2 * lab.config.leader_election.retry_period + 1.0,
            **extra,
        }

    def stop(self) -> list[str]:
        """End everything `start` made; return what is still there (empty when clean)."""
        for proc in self.sshds.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.sshds.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if (NETNS_DIR / self.netns).exists():
            subprocess.run(["ip", "netns", "del", self.netns], check=False, timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.made_privsep:
            shutil.rmtree(PRIVSEP_DIR, ignore_errors=True)
        left = [f"sshd {name} (pid {p.pid})" for name, p in self.sshds.items() if p.poll() is None]
        left += [f"sshd process {line}" for line in subprocess.run(
            ["pgrep", "-af", str(self.tmp)], capture_output=True, text=True, check=False).stdout.splitlines()]
        if (NETNS_DIR / self.netns).exists():
            left.append(f"network namespace {self.netns}")
        if self.tmp.exists():
            left.append(f"directory {self.tmp}")
        return left
