"""Provides the binaries the local lab runs: etcd and haproxy from Debian, kube-* built once from source.

`chaoslab lab install` calls `install()`; `chaoslab lab up` and the lab supervisor call `find_binaries()`,
which only looks and never installs. Debian ships etcd 3.4 and haproxy but no kube-apiserver, kube-scheduler
or kube-controller-manager for bookworm, so `install()` builds those from Debian's `kubernetes` source
package (1.20.2; 6–8 minutes and ~1.4 GB on 2 cores) into the cache directory. Every step is idempotent:
a second call only checks (well under a second).

    >>> binaries = find_binaries()     # InstallError naming every missing binary, and the fix
    >>> binaries.kube_apiserver
    PosixPath('/root/.cache/chaoslab/kubernetes/1.20.2/bin/kube-apiserver')
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from chaoslab.errors import InstallError

KUBERNETES_VERSION = "1.20.2"
KUBE_BINARIES = ("kube-apiserver", "kube-scheduler", "kube-controller-manager")
#: openssh-server/-client: the ssh target's integration tests run an sshd in every lab host (nothing starts
#: it otherwise); strace: the disk-latency fault attaches it to etcd. Installed, like the rest, only when missing.
LAB_PACKAGES = ("etcd-server", "etcd-client", "haproxy", "iptables", "iproute2", "procps", "util-linux",
                "openssh-server", "openssh-client", "strace")
BUILD_PACKAGES = ("golang-go", "jq", "rsync", "dpkg-dev", "make")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
#: Searched after $PATH: a non-login root shell often lacks the sbin directories where haproxy lives.
SBIN_PATH = "/usr/sbin:/sbin"
_DEFAULT_DEB_SRC = (
    "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
    "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
)
_OK, _WARN = "[green]✓[/]", "[yellow]![/]"


def cache_dir() -> Path:
    """Where downloads, builds and built binaries live: `$CHAOSLAB_CACHE_DIR`, else `~/.cache/chaoslab`."""
    env = os.environ.get("CHAOSLAB_CACHE_DIR")
    return Path(env) if env else Path(os.path.expanduser("~/.cache/chaoslab"))


def kubernetes_bin_dir() -> Path:
    """Where `install()` puts the kube-* binaries it built."""
    return cache_dir() / "kubernetes" / KUBERNETES_VERSION / "bin"


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every program the lab starts."""

    etcd: Path
    kube_apiserver: Path
    kube_scheduler: Path
    kube_controller_manager: Path
    haproxy: Path
    etcdctl: Path | None = None
    """Optional: only for people poking at the lab by hand."""


def _which(name: str) -> Path | None:
    found = shutil.which(name) or shutil.which(name, path=SBIN_PATH)
    return Path(found) if found else None


def _kube_dir(bin_dir: Path | None) -> tuple[Path, str | None]:
    """The directory holding kube-*, and how the user named it (None for our own cache)."""
    if bin_dir is not None:
        return bin_dir, f"--bin-dir {bin_dir}"
    env = os.environ.get("CHAOSLAB_BIN_DIR")
    if env:
        return Path(env), f"$CHAOSLAB_BIN_DIR={env}"
    return kubernetes_bin_dir(), None


def find_binaries(bin_dir: Path | None = None) -> Binaries:
    """Locate every binary without installing anything; raise one InstallError naming all that are missing."""
    kube_dir, named_by = _kube_dir(bin_dir)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in KUBE_BINARIES:
        path = kube_dir / name
        if os.access(path, os.X_OK) and path.is_file():
            found[name] = path
        elif named_by:
            missing.append(f"{named_by} has no {name}")
        else:
            missing.append(f"{name} (not in {kube_dir})")
    for name in ("etcd", "haproxy"):
        if which := _which(name):
            found[name] = which
        else:
            missing.append(f"{name} (not on PATH or in {SBIN_PATH})")
    if missing:
        fix = "point it at a directory with the kube-* binaries" if named_by else "run `chaoslab lab install`"
        raise InstallError("missing lab binaries:\n  " + "\n  ".join(missing) + f"\n{fix}")
    return Binaries(
        etcd=found["etcd"],
        kube_apiserver=found["kube-apiserver"],
        kube_scheduler=found["kube-scheduler"],
        kube_controller_manager=found["kube-controller-manager"],
        haproxy=found["haproxy"],
        etcdctl=_which("etcdctl"),
    )


def _run(
    cmd: Sequence[str | Path],
    *,
    check: bool = True,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    console: Console | None = None,
    title: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run one command. With `log`, output goes to that file behind a spinner, since apt and make flood."""
    argv = [str(c) for c in cmd]
    shown = " ".join(argv)
    try:
        if log is None:
            done = subprocess.run(argv, check=False, cwd=cwd, env=env, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL)
            tail = done.stderr.strip().splitlines()[-10:]
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            if console and not console.is_terminal:  # no spinner in CI logs: say at least what is running
                console.print(f"… {title or shown} (log {log})", soft_wrap=True)
            with log.open("w") as out:
                # Own session, so an interrupt can stop make and every compiler it started.
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True, start_new_session=True)
                try:
                    with (console or Console(quiet=True)).status(title or shown) as spinner:
                        start = time.monotonic()
                        while proc.poll() is None:
                            spinner.update(f"{title or shown} ({time.monotonic() - start:.0f} s, log {log})")
                            time.sleep(0.5)
                except BaseException:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait()
                    raise
            done = subprocess.CompletedProcess(argv, proc.returncode, "", "")
            tail = log.read_text(errors="replace").splitlines()[-30:] + [f"(full log: {log})"]
    except OSError as exc:
        raise InstallError(f"could not run `{shown}`: {exc}") from exc
    if check and done.returncode != 0:
        raise InstallError(f"`{shown}` exited {done.returncode}:\n  " + "\n  ".join(tail))
    return done


def _dpkg_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (`not-installed` and `config-files` included)."""
    done = _run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package], check=False)
    status, _, version = done.stdout.partition("\t")
    return version if done.returncode == 0 and status.endswith(" installed") else None


def _kube_version(path: Path) -> str | None:
    """`v1.20.2` from `kube-apiserver --version` ("Kubernetes v1.20.2"), or None if it does not run."""
    try:
        done = _run([path, "--version"], check=False)
    except InstallError:
        return None
    words = done.stdout.split()
    return words[-1] if done.returncode == 0 and words else None


def deb_src_sources(debian_sources: str) -> str:
    """deb822 text: a `deb-src` stanza for each enabled `deb` stanza of `debian_sources`, else Debian's."""
    keep = ("URIs", "Suites", "Components", "Signed-By")
    stanzas: list[str] = []
    for block in debian_sources.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:  # continuation, e.g. an inline Signed-By key block
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(":")
                key = key.strip()
                fields[key] = value.rstrip()  # kept as written, leading space included
        if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes").strip().lower() != "no":
            body = "".join(f"{k}:{fields[k]}\n" for k in keep if k in fields)
            stanzas.append("Types: deb-src\n" + body)
    return "\n".join(stanzas) if stanzas else _DEFAULT_DEB_SRC


class _Installer:
    """One `install()` run: its console, its log directory, and whether apt's lists are fresh yet."""

    def __init__(self, console: Console, jobs: int | None) -> None:
        self.console = console
        self.jobs = jobs
        self.logs = cache_dir() / "logs"
        self.updated = False

    def say(self, line: str) -> None:
        self.console.print(line, soft_wrap=True)  # one line a step, even when a path makes it long

    def apt_update(self) -> None:
        self.updated = True
        _run(["apt-get", "update"], log=self.logs / "apt-update.log", console=self.console,
             title="apt-get update")

    def packages(self, names: Sequence[str]) -> None:
        """Install the missing ones among `names` (apt-get update first, at most once per run)."""
        have = {name: _dpkg_version(name) for name in names}
        missing = [name for name, version in have.items() if version is None]
        if missing:
            if os.geteuid() != 0:
                names = " ".join(missing)
                raise InstallError(f"Debian packages missing: {names}; run `sudo chaoslab lab install`")
            if not self.updated:
                self.apt_update()
            _run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                 env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                 log=self.logs / "apt-install.log", console=self.console,
                 title=f"installing {' '.join(missing)}")
        for name, version in have.items():
            note = "already installed" if version else "installed"
            self.say(f"{_OK} {name} {version or _dpkg_version(name)} ({note})")

    def kubectl(self) -> None:
        # A kubectl from elsewhere (google-cloud-sdk) owns /usr/bin/kubectl: kubernetes-client would clash.
        found = _which("kubectl")
        if found:
            self.say(f"{_OK} kubectl ({escape(str(found))}, left as it is)")
            return
        try:
            self.packages(["kubernetes-client"])
        except InstallError as exc:  # the lab itself never runs kubectl
            self.say(f"{_WARN} kubectl not installed (optional): {escape(str(exc))}")

    def kubernetes(self, bin_dir: Path | None) -> None:
        user_dir, named_by = _kube_dir(bin_dir)
        if named_by:  # someone else's binaries: any version will do, we only show it
            for name in KUBE_BINARIES:
                version = _kube_version(user_dir / name)
                if version is None:
                    raise InstallError(f"{named_by} has no working {name}; point it at the kube-* binaries")
                self.say(f"{_OK} {name} {version} ({escape(str(user_dir))})")
            return
        target = kubernetes_bin_dir()
        if _built(target):
            for name in KUBE_BINARIES:
                self.say(f"{_OK} {name} v{KUBERNETES_VERSION} (already installed)")
            return
        with _lock(cache_dir() / "kubernetes" / ".install.lock"):
            src = cache_dir() / "kubernetes" / "src"
            # A finished build left by a crashed or manual run: copy it rather than spend minutes again.
            trees = [*src.glob("kubernetes-*"), *src.glob("*/kubernetes-*")] if src.is_dir() else []
            ready = [out for out in map(_outputs, trees) if out]
            if not ready:  # leftovers of a failed build are gigabytes that a new build does not reuse
                shutil.rmtree(src, ignore_errors=True)
            out = ready[0] if ready else self.build(src)
            _replace_dir(out, target)
            if not _built(target):
                raise InstallError(f"binaries copied to {target} do not report v{KUBERNETES_VERSION}")
            shutil.rmtree(src, ignore_errors=True)  # gigabytes of source, vendor and build output
        for name in KUBE_BINARIES:
            self.say(f"{_OK} {name} v{KUBERNETES_VERSION} (built, {escape(str(target))})")

    def build(self, src: Path) -> Path:
        """Build the three kube-* binaries from Debian's source package; return their directory."""
        self.packages(BUILD_PACKAGES)
        self.ensure_deb_src()
        src.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=src))
        # As root apt warns that `_apt` cannot write here; the download still works.
        _run(["apt-get", "source", "kubernetes"], cwd=work, log=self.logs / "apt-source.log",
             console=self.console, title="downloading Debian's kubernetes source")
        trees = [p for p in work.glob("kubernetes-*") if p.is_dir()]
        if len(trees) != 1:
            raise InstallError(f"`apt-get source kubernetes` left {len(trees)} trees in {work}, expected 1")
        tree = trees[0]
        # `go build ./cmd/...` fails on go.mod; the tree's make works inside a GOPATH, as in debian/rules.
        link = tree / ".go" / "src" / "k8s.io" / "kubernetes"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(tree)
        # HOME keeps a user's ~/.config/go/env out of the build. No GOCACHE: hack/lib/golang.sh sets its own
        # inside _output, so it goes away with the tree.
        env = {**os.environ, "GOPATH": str(tree / ".go"), "CGO_ENABLED": "0", "GOFLAGS": "-mod=vendor",
               "HOME": str(cache_dir() / "go-home")}
        if self.jobs:  # not `-p` in GOFLAGS: hack/lib/golang.sh pastes GOFLAGS into -tags; a space splits it
            env["GOMAXPROCS"] = str(self.jobs)  # go's -p and the compiler's -c default to GOMAXPROCS
        what = " ".join(f"cmd/{name}" for name in KUBE_BINARIES)
        _run(["make", f"WHAT={what}"], cwd=link, env=env, log=self.logs / "kubernetes-build.log",
             console=self.console, title=f"building kubernetes {KUBERNETES_VERSION} (6–8 minutes)")
        out = _outputs(tree)
        if out is None:
            raise InstallError(f"make ended but {tree}/_output has no kube-* reporting v{KUBERNETES_VERSION}")
        return out

    def ensure_deb_src(self) -> None:
        """Make `apt-get source kubernetes` possible: add deb-src stanzas mirroring the `deb` ones."""
        probe = ["apt-get", "source", "--print-uris", "kubernetes"]
        if _run(probe, check=False).returncode == 0:
            return
        ours = APT_SOURCES_DIR / "chaoslab-src.sources"
        debian = APT_SOURCES_DIR / "debian.sources"
        ours.write_text(deb_src_sources(debian.read_text() if debian.is_file() else ""))
        self.say(f"{_OK} deb-src entries written to {ours}")
        self.apt_update()
        if _run(probe, check=False).returncode != 0:
            raise InstallError(f"apt finds no source package `kubernetes`; check {ours}")


def _built(bin_dir: Path) -> bool:
    return all(_kube_version(bin_dir / name) == f"v{KUBERNETES_VERSION}" for name in KUBE_BINARIES)


def _outputs(tree: Path) -> Path | None:
    """The directory of a finished build inside a source tree; make puts it in either place."""
    for out in (tree / "_output" / "local" / "bin" / "linux" / "amd64", tree / "_output" / "bin"):
        if _built(out):
            return out
    return None


def _replace_dir(source: Path, target: Path) -> None:
    """Copy the kube-* binaries from `source` and swap them in whole, so a crash never leaves half a set."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bin-", dir=target.parent))
    for name in KUBE_BINARIES:
        shutil.copy2(source / name, staging / name)
    staging.chmod(0o755)
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=".old-", dir=target.parent))
        target.rename(old / "bin")
        staging.rename(target)
        shutil.rmtree(old)
    else:
        staging.rename(target)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Two builds at once would need twice the ~1.4 GB of memory, so a second installer stops instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise InstallError(f"another `chaoslab lab install` holds {path}; wait for it to finish") from exc
        yield


def install(
    bin_dir: Path | None = None, *, console: Console | None = None, jobs: int | None = None
) -> Binaries:
    """Provide every binary the lab needs and return them; quick when nothing is missing.

    `bin_dir` (or `$CHAOSLAB_BIN_DIR`) names a directory with your own kube-* binaries: they are only checked.
    `jobs` caps the Go compiler's parallelism (default: one per CPU).
    """
    installer = _Installer(console or Console(), jobs)
    installer.packages(LAB_PACKAGES)
    installer.kubectl()
    installer.kubernetes(bin_dir)
    return find_binaries(bin_dir)
