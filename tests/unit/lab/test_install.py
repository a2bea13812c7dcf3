"""Unit tests for chaoslab.lab.install: finding binaries, deb-src text, and install() with nothing to fetch.

No apt, no network, no build: binaries are tiny shell scripts that print a version, dpkg is faked.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from chaoslab.errors import InstallError
from chaoslab.lab import install as inst


def _script(path: Path, output: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)
    return path


def _kube(bin_dir: Path, version: str = "v1.20.2") -> Path:
    for name in inst.KUBE_BINARIES:
        _script(bin_dir / name, f"Kubernetes {version}")
    return bin_dir


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only fake etcd, etcdctl and haproxy; an empty sbin; a private cache directory."""
    usr_bin = tmp_path / "usr-bin"
    for name in ("etcd", "etcdctl", "haproxy"):
        _script(usr_bin / name, f"{name} 3.4.23")
    monkeypatch.setenv("PATH", str(usr_bin))
    monkeypatch.setattr(inst, "SBIN_PATH", str(tmp_path / "sbin"))
    monkeypatch.setenv("CHAOSLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CHAOSLAB_BIN_DIR", raising=False)
    return tmp_path


def test_cache_dir_is_env_else_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAOSLAB_CACHE_DIR", str(tmp_path / "c"))
    assert inst.cache_dir() == tmp_path / "c"
    assert inst.kubernetes_bin_dir() == tmp_path / "c" / "kubernetes" / "1.20.2" / "bin"
    monkeypatch.delenv("CHAOSLAB_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert inst.cache_dir() == tmp_path / "home" / ".cache" / "chaoslab"


def test_find_binaries_uses_the_cache_and_path(machine: Path) -> None:
    kube = _kube(inst.kubernetes_bin_dir())
    found = inst.find_binaries()
    assert found.kube_apiserver == kube / "kube-apiserver"
    assert found.kube_controller_manager == kube / "kube-controller-manager"
    assert found.etcd == machine / "usr-bin" / "etcd"
    assert found.etcdctl == machine / "usr-bin" / "etcdctl"


def test_haproxy_is_found_in_sbin_when_not_on_path(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _kube(inst.kubernetes_bin_dir())
    (machine / "usr-bin" / "haproxy").unlink()
    sbin_haproxy = _script(machine / "sbin" / "haproxy", "HAProxy version 2.6")
    assert inst.find_binaries().haproxy == sbin_haproxy


def test_etcdctl_is_optional(machine: Path) -> None:
    _kube(inst.kubernetes_bin_dir())
    (machine / "usr-bin" / "etcdctl").unlink()
    assert inst.find_binaries().etcdctl is None


def test_error_names_every_missing_binary_and_the_fix(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(machine / "empty"))
    with pytest.raises(InstallError) as err:
        inst.find_binaries()
    message = str(err.value)
    for name in ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "etcd (", "haproxy"):
        assert name in message
    assert "etcdctl" not in message
    assert "run `chaoslab lab install`" in message


def test_user_bin_dir_error_names_the_option(machine: Path) -> None:
    user = _kube(machine / "mine")
    (user / "kube-scheduler").unlink()
    with pytest.raises(InstallError, match=f"--bin-dir {user} has no kube-scheduler"):
        inst.find_binaries(user)


def test_env_bin_dir_is_used_without_an_argument(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _kube(inst.kubernetes_bin_dir())
    env_dir = _kube(machine / "env")
    monkeypatch.setenv("CHAOSLAB_BIN_DIR", str(env_dir))
    assert inst.find_binaries().kube_scheduler == env_dir / "kube-scheduler"
    (env_dir / "kube-apiserver").unlink()
    with pytest.raises(InstallError, match=r"\$CHAOSLAB_BIN_DIR=.* has no kube-apiserver"):
        inst.find_binaries()


def test_bin_dir_argument_beats_env(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSLAB_BIN_DIR", str(_kube(machine / "env")))
    arg_dir = _kube(machine / "arg")
    assert inst.find_binaries(arg_dir).kube_apiserver == arg_dir / "kube-apiserver"


SAMPLE_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main contrib
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD9K7
 -----END PGP PUBLIC KEY BLOCK-----
"""


def test_deb_src_mirrors_each_enabled_deb_stanza() -> None:
    assert inst.deb_src_sources(SAMPLE_SOURCES) == (
        "Types: deb-src\n"
        "URIs: http://deb.debian.org/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\n"
        "Types: deb-src\n"
        "URIs: http://deb.debian.org/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main contrib\n"
        "Signed-By:\n"
        " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
        " .\n"
        " mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD9K7\n"
        " -----END PGP PUBLIC KEY BLOCK-----\n"
    )


def test_deb_src_falls_back_to_bookworm_without_deb_stanzas() -> None:
    text = inst.deb_src_sources("")
    assert text.startswith("Types: deb-src\nURIs: http://deb.debian.org/debian\n")
    assert "Suites: bookworm bookworm-updates\n" in text


@pytest.fixture
def quiet_dpkg(machine: Path, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Every Debian package installed, a kubectl on PATH; returns what install() printed."""
    monkeypatch.setattr(inst, "_dpkg_version", lambda package: "1.0-1")
    _script(machine / "usr-bin" / "kubectl", "Client Version: v1.32.4")
    return io.StringIO()


def _console(out: io.StringIO) -> Console:
    return Console(file=out, width=200, color_system=None)


def test_install_only_checks_a_user_bin_dir(machine: Path, quiet_dpkg: io.StringIO) -> None:
    user = _kube(machine / "mine", version="v1.19.7")
    found = inst.install(user, console=_console(quiet_dpkg))
    assert found.kube_apiserver == user / "kube-apiserver"
    printed = quiet_dpkg.getvalue()
    assert "✓ etcd-server 1.0-1 (already installed)" in printed
    assert "✓ kube-apiserver v1.19.7" in printed
    assert "left as it is" in printed


def test_install_copies_a_finished_build_then_is_a_no_op(
    machine: Path, quiet_dpkg: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(self: object, src: Path) -> Path:
        raise AssertionError("must not build")

    monkeypatch.setattr(inst._Installer, "build", no_build)
    src = inst.cache_dir() / "kubernetes" / "src"
    _kube(src / "build-x" / "kubernetes-1.20.2" / "_output" / "local" / "bin" / "linux" / "amd64")
    found = inst.install(console=_console(quiet_dpkg))
    assert found.kube_scheduler == inst.kubernetes_bin_dir() / "kube-scheduler"
    assert not src.exists()  # the large source tree is gone once its binaries are copied out
    assert inst.install(console=_console(quiet_dpkg)) == found
    assert "kube-apiserver v1.20.2 (already installed)" in quiet_dpkg.getvalue()


def test_install_rebuilds_cached_binaries_of_another_version(
    machine: Path, quiet_dpkg: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kube(inst.kubernetes_bin_dir(), version="v1.19.0")
    fresh = _kube(machine / "fresh-build")
    monkeypatch.setattr(inst._Installer, "build", lambda self, src: fresh)
    inst.install(console=_console(quiet_dpkg))
    assert inst._kube_version(inst.kubernetes_bin_dir() / "kube-apiserver") == "v1.20.2"
    assert sorted(p.name for p in inst.kubernetes_bin_dir().parent.iterdir()) == ["bin"]


def test_missing_deb_src_is_added_from_debian_sources(
    machine: Path, monkeypatch: pytest.MonkeyPatch, quiet_dpkg: io.StringIO
) -> None:
    (machine / "apt").mkdir()
    (machine / "apt" / "debian.sources").write_text(SAMPLE_SOURCES)
    monkeypatch.setattr(inst, "APT_SOURCES_DIR", machine / "apt")
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append([str(c) for c in cmd])
        has_src = (machine / "apt" / "chaoslab-src.sources").exists()
        return subprocess.CompletedProcess(cmd, 0 if has_src else 100, "", "")

    monkeypatch.setattr(inst, "_run", fake_run)
    inst._Installer(_console(quiet_dpkg), None).ensure_deb_src()
    written = (machine / "apt" / "chaoslab-src.sources").read_text()
    assert written == inst.deb_src_sources(SAMPLE_SOURCES)
    assert [c[:2] for c in calls] == [["apt-get", "source"], ["apt-get", "update"], ["apt-get", "source"]]


def test_failed_command_names_command_exit_code_and_stderr_tail() -> None:
    with pytest.raises(InstallError, match=r"`sh -c echo boom >&2; exit 3` exited 3:\n  boom"):
        inst._run(["sh", "-c", "echo boom >&2; exit 3"])


def test_logged_command_failure_shows_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "make.log"
    with pytest.raises(InstallError) as err:
        inst._run(["sh", "-c", "seq 1 100; exit 2"], log=log, console=_console(io.StringIO()))
    lines = str(err.value).splitlines()
    assert lines[1].strip() == "71" and lines[-2].strip() == "100"
    assert f"full log: {log}" in lines[-1]


def test_missing_program_is_an_install_error(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="could not run"):
        inst._run([tmp_path / "nope", "--version"])
