"""How chaoslab speaks to a control-plane host: a command line (`Command`, an argument list, never a shell
string), how it is wrapped to run on or in the host (`Wrap`: in a network namespace, over ssh, in a helper
pod), and the host as its peers reach it on the network (`Endpoint`). Targets run these; faults build them.

    >>> wrap([Command(("iptables", "-L"))], in_netns("chaoslab-lab-cp2"))[0].argv
    ('ip', 'netns', 'exec', 'chaoslab-lab-cp2', 'iptables', '-L')
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Argv", "Command", "Endpoint", "Wrap", "in_netns", "on_host", "wrap"]

Argv = tuple[str, ...]

_NETNS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Command:
    r"""One command line. `may_fail`: a failure means "already undone" (heal is idempotent), so the runner
    ignores its exit status; check the result afterwards instead (`leftovers`). `stdin`: text the command
    reads on its standard input (an `iptables-restore` transaction), passed through every wrap: `ip netns
    exec`, ssh (the remote command's stdin), sudo; a helper pod's script pipes it in (`shell`).

        >>> print(Command(("cat",), stdin="a b\n'c'\n").shell())
        printf '%s\n' 'a b' ''"'"'c'"'"'' | cat
    """

    argv: Argv
    may_fail: bool = False
    stdin: str | None = None
    """Whole lines (ending in a newline), or None: the command reads nothing (its stdin is /dev/null)."""

    def __post_init__(self) -> None:
        if self.stdin is not None and self.stdin and not self.stdin.endswith("\n"):
            raise ValueError(f"stdin of {list(self.argv)}: end it with a newline")

    def shell(self) -> str:
        """The command as one POSIX shell line, every token and input line quoted (`shlex.quote`); with
        `stdin`, fed by `printf` (a shell builtin) through a pipe, whose status is the command's."""
        line = shlex.join(self.argv)
        if self.stdin is None:
            return line
        lines = self.stdin.split("\n")[:-1]
        if not lines:
            return f"printf '' | {line}"
        return f"printf '%s\\n' {shlex.join(lines)} | {line}"

    def shown(self) -> list[str]:
        """For people (a plan's lines): the command line, then its input as a here-document, one line each."""
        line = shlex.join(self.argv)
        if self.stdin is None:
            return [line]
        return [f"{line} <<EOF", *(f"  {x}" for x in self.stdin.split("\n")[:-1]), "  EOF"]


# ---- where a command runs ------------------------------------------------------------------------------

Wrap = Callable[[Sequence[str]], Argv]
"""Turns a command line into one that runs it on/in the host. SSH would be `ssh HOST -- shlex.join(argv)`:
ssh hands the remote shell one string, so that wrapper must quote."""


def on_host(argv: Sequence[str]) -> Argv:
    """Run as is, on the machine chaoslab runs on."""
    return tuple(argv)


def in_netns(netns: str) -> Wrap:
    """Run inside the network namespace `netns` (`ip netns exec`), as the lab's hosts are."""
    if not _NETNS.match(netns):
        raise ValueError(f"network namespace {netns!r}: use letters, digits, '_', '.', '-'")
    return lambda argv: ("ip", "netns", "exec", netns, *argv)


def wrap(commands: Iterable[Command], how: Wrap) -> tuple[Command, ...]:
    """Each command wrapped by `how`; its `may_fail` and `stdin` go with it."""
    return tuple(Command(how(c.argv), c.may_fail, c.stdin) for c in commands)


@dataclass(frozen=True)
class Endpoint:
    """A host as the network sees it, or a party outside the control plane (`managed=False`)."""

    host: str
    address: str
    """IPv4 address its peers reach it on (iptables only; IPv6 would need ip6tables)."""
    device: str | None = None
    """The interface its peer traffic leaves by (for `tc`), when the target knows it."""
    managed: bool = True
    """False for a party chaoslab installs no rule on, such as the clients of a host (a load balancer,
    users): its flows are cut by the rules on the other end only."""

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.address)
        except ValueError as exc:
            raise ValueError(f"host {self.host!r}: address {self.address!r} is not an IPv4 address") from exc
