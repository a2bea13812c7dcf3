"""Malformed inputs for the spec loader: `case(seed, index)` is one mutated file (or a special file), the
same for the same (seed, index) on every machine. Each case belongs to one family of issue 14:

    control-char    raw control characters, BOM, NUL, invalid UTF-8 inside the text
    bad-tag         explicit tags with bad values (`!!int 5s`, `!!bool maybe`, `!!timestamp abc`, `!!python/…`)
    impossible-date `2026-02-30`, `2026-13-01`, reversed ranges (game days' freeze, anywhere)
    huge-number     integers over 4,300 digits, long digit strings in durations, 1e400
    deep-nesting    flow and block nesting hundreds to tens of thousands of levels deep
    alias-bomb      billion laughs (up to 9 levels), self-referencing and merge aliases, undefined aliases
    nan-inf         .nan / .inf / -.inf where numbers are expected
    float-for-int   2.0, 1e3, 0x10, 1:30 where whole numbers are expected
    markup          rich markup (`[/]`, `[bold]`) in values, keys and file names; a 40 KB name
    wrong-type      any field replaced by a value of another type (keys too)
    ssh-target      an ssh `spec.target` with bad hosts, ports, addresses, components, timeouts
    chaostoolkit    Chaos Toolkit experiments with bad method, configuration, pauses, providers, controls
    gameday-field   game days: time zones, hours, freeze, notify commands, step files, runs, overrides
    special-file    FIFO, /dev/zero, a directory, a symlink loop, a huge file, a FIFO inside a directory
    file-name       300-character names, markup, newlines and spaces in names
    text            truncation, lines dropped, doubled or swapped, tabs, CRLF, splices of two seeds
    structure       keys dropped, duplicated, unknown keys added, values emptied
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

FAMILIES = ("control-char", "bad-tag", "impossible-date", "huge-number", "deep-nesting", "alias-bomb",
            "nan-inf", "float-for-int", "markup", "wrong-type", "ssh-target", "chaostoolkit", "gameday-field",
            "special-file", "file-name", "text", "structure")

#: A kubeadm-style ssh target as docs/targets.md shows it (the shipped experiments all use the lab).
SSH_TARGET: dict[str, Any] = {
    "kind": "ssh", "name": "prod-eu1", "kubeconfig": "~/.kube/prod-eu1.conf", "context": "admin@prod-eu1",
    "user": "root", "port": 22, "key": "~/.ssh/chaoslab_ed25519", "sudo": False, "knownHosts": "~/.ssh/known_hosts",
    "strictHostKeyChecking": "yes", "connectTimeout": 5, "commandTimeout": 30,
    "hosts": [{"name": "cp1", "address": "10.0.0.11"},
              {"name": "cp2", "address": "cp2.prod.example", "peerAddress": "10.0.0.12", "user": "admin",
               "sudo": True},
              {"name": "cp3", "address": "10.0.0.13"}],
    "etcd": {"endpoints": {"cp1": "https://10.0.0.11:2379", "cp2": "https://10.0.0.12:2379",
                           "cp3": "https://10.0.0.13:2379"},
             "ca": "./pki/etcd/ca.crt", "cert": "./pki/apiserver-etcd-client.crt",
             "key": "./pki/apiserver-etcd-client.key"},
    "apiservers": {"cp1": "https://10.0.0.11:6443"}, "components": {"kube-apiserver": ["cp1", "cp2", "cp3"]},
    "clientsAddress": "10.0.0.5", "interface": "ens3", "runtime": "process", "controlPersist": 10,
}

#: A game day with the fields the shipped one lacks: an inline experiment, notify, runs and step pauses.
GAMEDAY_EXTRA = """\
apiVersion: chaoslab.io/v1alpha1
kind: GameDay
metadata:
  name: fuzz-day
spec:
  window: {days: [Mon, Tue], hours: "09:00-17:00", timeZone: UTC, freeze: [2026-12-24, 2026-12-30..2027-01-02]}
  repeat: 2
  pause: 1s
  abort: {apiserverUnavailable: 30s, apiWriteUnavailable: 1m}
  overrides: {duration: 5s, settle: 2s, recoveryTimeout: 60s}
  notify:
    - {webhook: "https://hooks.example/x", format: markdown, "on": failure}
    - {command: "mail -s 'game day' ops@example.com"}
    - {command: [logger, -t, chaoslab]}
  steps:
    - file: ../etcd-leader-kill.yaml
      name: first
      runs: 1
      pause: 2s
    - name: inline
      after: [first]
      confirm: Go?
      overrides: {duration: 3s}
      experiment:
        apiVersion: chaoslab.io/v1alpha1
        kind: Experiment
        metadata: {name: inline-kill}
        spec:
          faults: [{kind: kill-process, component: etcd, select: follower, count: 1}]
          duration: 5s
          runs: 2
          slo: {etcdLeaderElections: {max: 1}, recoveryTime: {p95: 20s}, apiReadErrorRate: {max: 0.05}}
          blastRadius: {maxMembers: 1, maxPods: 0}
"""


@dataclass(frozen=True)
class Seed:
    path: str
    """Where it sits in the case directory (relative), so a game day's `../x.yaml` steps resolve."""
    text: str
    kind: str
    """experiment, gameday, probeset, chaostoolkit or other."""


@dataclass(frozen=True)
class Case:
    family: str
    seed: str
    path: str
    """The input's path relative to the case directory (may be long, hold markup or newlines)."""
    content: bytes | None
    special: str = ""
    """'' (a regular file with `content`), fifo, dev-zero, dev-urandom, directory, symlink-loop, missing,
    dir-with-fifo, big; special inputs may come with `content` for a companion file."""
    commands: tuple[str, ...] = ("validate",)
    extra: tuple[tuple[str, str], ...] = field(default=())
    """(relative path, special kind) of further special files the input names (a game day step's FIFO)."""
    note: str = ""


def _kind(data: Any) -> str:
    if not isinstance(data, dict):
        return "other"
    if "method" in data and "kind" not in data:
        return "chaostoolkit"
    return {"Experiment": "experiment", "ControlPlaneChaos": "experiment", "GameDay": "gameday",
            "ProbeSet": "probeset"}.get(str(data.get("kind")), "other")


@cache
def seeds() -> tuple[Seed, ...]:
    """Every file under experiments/ and probes/ (at its own relative place), an ssh-target and a richer game
    day, and the Chaos Toolkit export of every shipped experiment."""
    from chaoslab.spec import load
    from chaoslab.spec.chaostoolkit import to_chaostoolkit

    out: list[Seed] = []
    for top in ("experiments", "probes"):
        for p in sorted((REPO / top).rglob("*")):
            if p.is_file() and p.suffix in (".yaml", ".yml", ".json"):
                text = p.read_text(encoding="utf-8")
                docs = list(yaml.safe_load_all(text))
                out.append(Seed(str(p.relative_to(REPO)), text, _kind(docs[0]) if len(docs) == 1 else "other"))
    for s in list(out):
        if s.kind == "experiment":
            data = yaml.safe_load(s.text)
            if data.get("kind") == "Experiment":
                data["spec"]["target"] = copy.deepcopy(SSH_TARGET)
                out.append(Seed(s.path.replace(".yaml", "-ssh.yaml"), _dump(data), "experiment"))
            [exp] = load(REPO / s.path)
            ctk = json.dumps(to_chaostoolkit(exp), indent=2)
            out.append(Seed(s.path.replace(".yaml", ".ctk.json"), ctk, "chaostoolkit"))
    out.append(Seed("experiments/gamedays/fuzz-day.yaml", GAMEDAY_EXTRA, "gameday"))
    return tuple(out)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=10**9,
                     default_flow_style=False)


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _parsed(path: str) -> Any:
    """A seed's documents as data (one document: itself); mutators copy before they change anything."""
    text = next(s.text for s in seeds() if s.path == path)
    docs = list(yaml.load_all(text, Loader=_LOADER))
    return docs[0] if len(docs) == 1 else docs


# ---- values -----------------------------------------------------------------------------------------
def _digits(rng: random.Random) -> str:
    n = rng.choice([19, 20, 40, 310, 400, 4300, 4301, 5000, 20000, 100000])
    block = "".join(rng.choices("0123456789", k=min(n, 997)))  # a long string need not be random throughout
    return ("1" + block * (n // len(block) + 1))[:n]


def bad_tag(rng: random.Random, original: str = "5s") -> str:
    return rng.choice([
        "!!int 5s", "!!int 1.5", "!!int ''", "!!int 0b2", "!!int 0o9", "!!int 0x", "!!int 1_", "!!int 190:20:30",
        "!!bool maybe", "!!bool ''", "!!timestamp abc", "!!timestamp 2026-02-30", "!!timestamp 2026-01-01T99:00:00",
        "!!float abc", "!!float ''", "!!float .nan", "!!float 1:2:3.5", "!!binary '***'", "!!binary aGk=",
        "!!null x", "!!str [1]", "!!map [1, 2]", "!!seq {a: 1}", "!!set [1]", "!!set {a: 1}", "!!omap [a]",
        "!!omap [{a: 1}, {a: 2}]", "!!pairs {a: 1}", "!!merge x", "!!value x", "!!yaml x",
        "!!python/object:os.system x", "!!python/name:os.system ''", "!!python/object/apply:os.system [id]",
        "!local x", "!<tag:example.com,2000:x> y", "!<!> x", "!! x", f"!!int {original}",
        f"!!float {original}", f"!!timestamp {original}", f"!!bool {original}", f"!!binary {original}",
        f"!!map {original}", f"!!seq {original}", f"!!set {original}"])


def impossible_date(rng: random.Random) -> str:
    return rng.choice([
        "2026-02-30", "2026-13-01", "2026-00-10", "2026-04-31", "0000-01-01", "9999-12-32", "2025-02-29",
        "2026-2-3", "2026-02-30 25:61:61", "2026-02-30T10:00:00Z", "2026-01-01T24:00:00", "2026-01-01T10:00:00+99:00",
        "'2026-12-20..2026-02-30'", "'2027-01-06..2026-12-20'", "'2026-02-30..2026-03-01'", "1-1-1", "99999-01-01",
        "'2026-12-24..'", "'..2026-12-24'", "'2026-12-24..2026-12-25..2026-12-26'", "2026-01-01 10:00:00.1234567891234"])


def huge_number(rng: random.Random) -> str:
    d = _digits(rng)
    return rng.choice([d, f"-{d}", f"{d}s", f"{d}ms", f"{d}h", f"'{d}'", f"{d}.{d}", f"0.{d}", f"{d}e5",
                       "1e400", "-1e400", "1e-400", "1" + "0" * 309, "1" + "0" * 309 + ".0", "0" * 5000 + "1",
                       f"must-not-exceed-{d}", f"'{d}m{d}s'", f"{d}{d}", f"0x{d}", f"0o{d[:500]}",
                       f"{d[:30]}:{d[:30]}", "179769313486231570000000000000000000000000" + "0" * 270 + "s"])


def nan_inf(rng: random.Random) -> str:
    return rng.choice([".nan", ".NaN", ".NAN", ".inf", ".Inf", "-.inf", "+.inf", ".INF", "-.INF", "1e309",
                       "-1e309", "nan", "inf", "'NaN'", "'Infinity'", "-0.0", "1e309s"])


def float_for_int(rng: random.Random) -> str:
    return rng.choice(["2.0", "1.5", "0.5", "1e3", "1.0e+1", "0x10", "0o17", "0b1", "1_000", "+1", "-0", "-1",
                       "true", "false", "'1'", "1:30", "0.", ".5", "3.0000000000000001", "1e-320", "2.",
                       "'2'", "yes", "~"])


def markup(rng: random.Random) -> str:
    return rng.choice(["'[/]'", "'[bold]x'", "'[link=http://x]y[/link]'", "'[red]'", "'\\[x]'", "'[/red]'",
                       "'[#ff0000]x'", "':smile:'", "'[@click=app.quit]x[/]'", "'x [/] y'", "'[b]'",
                       "'[bold red on white]boom[/]'", "'[/bold]'", "'[[]]'", "'[/]' ", "'x' ",
                       "'" + "a" * 40000 + "'", "'" + "a-" * 20000 + "a'", "'" + "[b]" * 5000 + "'",
                       "'\\x1b[31mred'", "'\u202eevil'", "\"\\e[2J\""])


_WRONG = ["~", "true", "false", "0", "-5", "1.5", "''", "'x'", "[]", "{}", "[1, 2]", "{a: 1}", "2026-01-01",
          "2026-01-01 10:00:00", "!!binary aGk=", "[[]]", "{[1]: 2}", "{1: 2}", "{~: 1}", "{true: x}",
          "\"\\0\"", "\"\\x00a\"", "[~]", "[{}]", "{a: [1, {b: ~}]}", "!!set {a, b}", "'-'", "' '",
          "{? [1]: 2}", "{? {a: 1}: 2}", "[1, [2, [3]]]", "'${x}'", "'${chaoslab_target}'", "'$'", "10:00",
          "'10:00-16:00'", "kill-process", "etcd", "leader", "'host:'", "'host:[/]'", "'../../etc/passwd'",
          "/dev/zero", "'a b'", "'\\t'"]


def wrong_type(rng: random.Random) -> str:
    return rng.choice(_WRONG)


def deep_nesting(rng: random.Random) -> str:
    d = rng.choice([50, 99, 100, 101, 200, 500, 1000, 5000, 50000])
    return rng.choice(["[" * d + "]" * d, "[" * d + "1" + "]" * d, "{a: " * d + "1" + "}" * d,
                       "[{a: " * (d // 2) + "1" + "}]" * (d // 2), "[" * d, "{a: " * d])


def alias_bomb(rng: random.Random) -> str:
    levels, width = rng.choice([(3, 3), (5, 9), (6, 9), (9, 9), (9, 10), (20, 2), (30, 2)])
    parts = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        parts.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    bomb = "{" + ", ".join(parts) + "}"
    return rng.choice([bomb, "&a [*a]", "&a {x: *a}", "&a [1, [2, *a]]", "*nope", "&a {<<: *a}",
                       "{a: &a {x: 1}, b: {<<: [*a, *a, *a]}}", "&a [&b [*a, *b]]", "&a &b x", "*",
                       "{&k a: 1, *k : 2}", "[&a x, *a, *a, *a]", "&a" + " [*a" * 50 + "]" * 50])


# ---- the tree ----------------------------------------------------------------------------------------
def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append((*path, k))
            out += _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append((*path, i))
            out += _paths(v, (*path, i))
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        data = data[k]
    return data


TOKEN = "FUZZTOKEN{}"


def _with_raw(data: Any, rng: random.Random, make: Any, paths: list[tuple[Any, ...]] | None = None,
              n: int = 1, keys: bool = False) -> str:
    """`data` dumped with `n` values (or keys) replaced by raw YAML text from `make(rng, original)`."""
    data = copy.deepcopy(data)
    paths = paths if paths is not None else _paths(data)
    raws: dict[str, str] = {}
    for j in range(n):
        if not paths:
            break
        path = rng.choice(paths)
        try:
            parent = _get(data, path[:-1])
            original = parent[path[-1]]
            if not isinstance(parent, (dict, list)):
                continue
        except (KeyError, IndexError, TypeError):
            continue
        token = TOKEN.format(j)
        raw = make(rng, str(original) if not isinstance(original, (dict, list)) else "x")
        if keys and isinstance(parent, dict):
            parent[token] = parent.pop(path[-1])
            # A key is written `TOKEN: value`; a raw key must stay on one line and be a plain key.
            raws[token] = raw if rng.random() < 0.5 else f"? {raw}\n"
        else:
            parent[path[-1]] = token
            raws[token] = raw
    text = _dump(data)
    for token, raw in raws.items():
        text = text.replace(token, raw, 1)
    return text


def _orig(f: Any) -> Any:
    return lambda rng, original: f(rng)


# ---- text mutations --------------------------------------------------------------------------------------
_CONTROL = [chr(c) for c in range(32) if c not in (9, 10, 13)] + ["\x7f", "\x85", "\u2028", "\u2029",
                                                                    "\ufeff", "\ud800", "\udfff", "\ufffe", "\uffff"]


def _text_mutation(text: str, rng: random.Random, other: str) -> bytes:
    lines = text.split("\n")
    op = rng.randrange(12)
    if op == 0 and text:
        text = text[:rng.randrange(len(text))]
    elif op == 1 and lines:
        del lines[rng.randrange(len(lines))]
        text = "\n".join(lines)
    elif op == 2 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        text = "\n".join(lines)
    elif op == 3 and len(lines) > 1:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        text = "\n".join(lines)
    elif op == 4:
        text = text.replace("  ", "\t", rng.randrange(1, 5))
    elif op == 5:
        text = text.replace("\n", "\r\n") if rng.random() < 0.5 else text.replace("\n", "\r")
    elif op == 6:
        cut = rng.randrange(len(text) + 1)
        text = text[:cut] + other[rng.randrange(len(other) + 1):]
    elif op == 7:
        raw = bytearray(text.encode("utf-8", "surrogatepass"))
        for _ in range(rng.randrange(1, 4)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    elif op == 8:
        text = text + "\n---\n" + other
    elif op == 9:
        text = "---\n" * rng.randrange(1, 4) + text + "\n..." * rng.randrange(2)
    elif op == 10:
        text = text.replace(":", rng.choice([": :", "::", ": -", ":\n"]), 1)
    else:
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(["'", '"', "{", "[", "}", "]", "&", "*", "!", "|", ">", "%", "@", "`", "#",
                                      "? ", "- ", ", "]) + text[i:]
    return text.encode("utf-8", "surrogatepass")


def _control_chars(text: str, rng: random.Random) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:
        return b"\xef\xbb\xbf" * rng.randrange(1, 3) + text.encode()
    if choice == 1:
        raw = bytearray(text.encode())
        raw.insert(rng.randrange(len(raw) + 1), rng.choice([0x80, 0xff, 0xc3, 0xed, 0xf8]))
        return bytes(raw)
    if choice == 2:  # a form feed (or another control) inside a value
        lines = text.split("\n")
        candidates = [i for i, line in enumerate(lines) if ": " in line and not line.lstrip().startswith("#")]
        if candidates:
            i = rng.choice(candidates)
            head, _, tail = lines[i].partition(": ")
            lines[i] = f"{head}: {tail[:1]}{rng.choice(_CONTROL)}{tail[1:]}"
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    if choice == 3:  # inside a double-quoted escape
        return text.replace("name: ", 'name: "\\x0c\\0\\e\\N\\_\\L\\P\\ud800"  #', 1).encode()
    out = text
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(out) + 1)
        out = out[:i] + rng.choice(_CONTROL) + out[i:]
    return out.encode("utf-8", "surrogatepass")


# ---- families ------------------------------------------------------------------------------------------
def _field_paths(data: Any, keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    paths = [p for p in _paths(data) if p and p[-1] in keys]
    return paths or _paths(data)


_NUMERIC_KEYS = ("duration", "settle", "recoveryTimeout", "max", "min", "p50", "p90", "p95", "p99", "runs", "count",
                 "percent", "maxPods", "maxNodes", "maxMembers", "interval", "timeout", "loss", "delay", "jitter",
                 "minority", "parallelism", "gracePeriod", "retryInterval", "repeat", "pause", "port",
                 "connectTimeout", "commandTimeout", "controlPersist", "renewalWindow", "startTimeout",
                 "apiserverUnavailable", "apiWriteUnavailable", "expectedRecovery", "etcdLeaderElections", "after",
                 "timeout", "deadman")
_INT_KEYS = ("runs", "count", "maxPods", "maxNodes", "maxMembers", "repeat", "minority", "parallelism", "port",
             "etcdLeaderElections", "schedulerLeaderElections", "lostWrites", "pdbViolations", "max", "min")


def _ssh(data: dict[str, Any], rng: random.Random) -> str:
    big = _digits(rng)
    if not isinstance(data.get("spec"), dict) or data.get("kind") != "Experiment":
        data = _parsed(next(s.path for s in seeds() if s.path.endswith("-ssh.yaml")))
    data = copy.deepcopy(data)
    target = data["spec"].setdefault("target", copy.deepcopy(SSH_TARGET))
    if target.get("kind") != "ssh":
        data["spec"]["target"] = target = copy.deepcopy(SSH_TARGET)
    specific = {
        "hosts": ["cp1", "[cp1, cp2]", "[{name: cp1, address: 10.0.0.1}, cp2]", "[{1: 2}]", "[{name: 5, address: ~}]",
                  "[{name: cp1, address: '::1'}]", "[{name: cp1, address: '[::1]'}]",
                  "[{name: cp1, address: 'fe80::1%eth0'}]", "[{name: cp1, address: 10.0.0.300}]",
                  "[{name: cp1, address: '10.0.0.1:22'}]", "[{name: '[/]', address: 'x[/]'}]",
                  "[{name: cp1, address: a, port: 0}]", "[{name: cp1, address: a, port: 70000}]",
                  "[{name: cp1, address: a, port: '22'}]", "[{name: cp1, address: a, port: 22.0}]",
                  "[{name: cp1, address: a, port: true}]", "[{name: cp1, address: a, user: Root}]",
                  "[{name: cp1, address: a}, {name: cp1, address: b}]", "[{name: cp1, address: a, sudo: yes}]",
                  "[{name: cp1, address: '-oProxyCommand=id'}]", "[{name: cp1, address: ''}]", "[]", "{}"],
        "components": ["etcd", "[etcd]", "{etcd: cp1}", "{etcd: [cp9]}", "{etcd: [1]}", "{1: [cp1]}", "{kube-dns: [cp1]}",
                       "{etcd: []}", "{etcd: {cp1: 1}}"],
        "port": ["0", "70000", "'22'", "22.0", "true", "-1", big, ".nan"],
        "etcd": ["[https://a:2379]", "{endpoints: [https://10.0.0.11:2379]}", "{endpoints: {cp1: 5}}",
                 "{endpoints: {cp9: 'https://x:2379'}}", "{endpoints: 'https://x:2379'}", "{ca: 5}", "{discover: kubeadm}",
                 "{endpoints: {cp1: 'ftp://x'}}", "{endpoints: {cp1: 'https://[::1:2379'}}"],
        "apiservers": ["[https://a:6443]", "{cp1: 5}", "{cp9: 'https://x'}", "{cp1: 'https://[::1'}", "x"],
        "connectTimeout": ["-1", ".nan", ".inf", "'5s'", "0", big, "1e400"],
        "commandTimeout": ["-1", ".nan", ".inf", "'30s'", "0", big],
        "controlPersist": ["-1", ".nan", "'10'", "true", big],
        "strictHostKeyChecking": ["yes", "no", "maybe", "1"],
        "sshCommand": ["\"ssh -o 'unclosed\"", "[ssh, 5]", "''", "[]", "'ssh \\\\'"],
        "runtime": ["docker", "5", "[crictl]"], "user": ["Root", "''", "5", "'a b'", "'-oX'"],
        "key": ["5", "''", "[a]", "'~nobody/x'"], "sudo": ["'yes'", "1", "~"],
        "clientsAddress": ["'::1'", "'300.1.1.1'", "5", "'[/]'"], "interface": ["'eth0; rm'", "5", "''", "'a' "],
        "kubeconfig": ["5", "''", "[x]"], "name": ["'[/]'", "5", "''"], "renewalWindow": ["-1", ".nan", "'x'"],
    }
    raws: dict[str, str] = {}
    for j in range(rng.randrange(1, 4)):
        key = rng.choice(list(specific))
        token = TOKEN.format(j)
        target[key] = token
        raws[token] = rng.choice(specific[key])
    if rng.random() < 0.2:
        target[rng.choice(["bogus", "Hosts", "port ", 5])] = 1
    text = _dump(data)
    for token, raw in raws.items():
        text = text.replace(f"'{token}'", raw).replace(token, raw)
    return text


def _chaostoolkit(data: Any, rng: random.Random) -> str:
    big = _digits(rng)
    if not isinstance(data, dict) or "method" not in data:
        data = _parsed(rng.choice([s for s in seeds() if s.kind == "chaostoolkit"]).path)
    data = copy.deepcopy(data)
    specific = [
        (("method",), ["5", "[1]", "x", "{}", "[{}]", "[~]", "[{type: action}]", "[{type: probe, provider: 5}]",
                       "[{ref: x}]", "[{type: action, provider: {type: python, module: chaoslab.chaostoolkit.actions, func: 5}}]",
                       "[{type: action, provider: {type: python, module: chaoslab.chaostoolkit.actions, func: kill_process, arguments: [1]}}]",
                       "[{type: action, provider: {type: python, module: chaoslab.chaostoolkit.actions, func: inject_fault, arguments: {kind: 5, params: [1]}}, pauses: 5}]",
                       "[{type: action, provider: {type: python, module: chaoslab.chaostoolkit.actions, func: kill_process, arguments: {component: etcd, minority: [1]}}, pauses: {after: .inf}}]",
                       "[{type: action, provider: {type: python, module: chaoslab.chaostoolkit.actions, func: partition, arguments: {minority: '${x}'}}, pauses: {after: 1e400}}]",
                       "&m [{type: action, provider: {type: python, module: chaoslab.chaostoolkit.actions, func: inject_fault, arguments: {kind: kill-process, params: *m}}}]"]),
        (("configuration",), ["[1]", "5", "x", "{chaoslab_target: {type: env, key: NOPE_UNSET}}",
                              "{chaoslab_target: {type: env, key: [1]}}", "{chaoslab_target: {type: vault}}",
                              "{chaoslab_target: [1]}", "{chaoslab_target: 5}", "{chaoslab_target: 'lab:[/]'}",
                              "{chaoslab_target: 'kubeconfig:x'}", "{chaoslab_target: ''}", "{1: 2}",
                              "{chaoslab_target: {type: env, key: HOME}}", "&c {a: *c}"]),
        (("title",), ["5", "[1]", "{}", "~", "'[/]'", "''", "'" + "t" * 50000 + "'"]),
        (("description",), ["5", "[1]", "{a: 1}", "'[/]'", "''"]),
        (("secrets",), ["{a: {b: c}}", "5"]),
        (("controls",), ["{}", "[5]", "[{}]", "[{provider: 5}]", "x",
                         "[{name: chaoslab, provider: {type: python, module: chaoslab.chaostoolkit.control, arguments: [1]}}]",
                         "[{name: chaoslab, provider: {type: python, module: chaoslab.chaostoolkit.control, arguments: {slo: 5, probes: x, settle: .nan, abort: [1]}}}]",
                         "[{name: chaoslab, provider: {type: python, module: chaoslab.chaostoolkit.control, arguments: {name: '[/]', steadyState: etcd-quorum}}}]"]),
        (("steady-state-hypothesis",), ["[1]", "5", "{probes: 5}", "{probes: [5]}", "{probes: [{provider: {type: python, module: chaoslab.chaostoolkit.probes, func: steady_state, arguments: {conditions: 5}}}]}",
                                        "{probes: [{provider: {type: python, module: chaoslab.chaostoolkit.probes, func: apiserver_ready, arguments: [1]}}]}",
                                        "{probes: [{provider: {type: python, module: chaoslab.chaostoolkit.probes, func: lease_holder, arguments: {lease: [1]}}}]}"]),
        (("rollbacks",), ["x", "5", "[5]", "[{provider: {type: process, path: rm}}]"]),
    ]
    raws: dict[str, str] = {}
    for j in range(rng.randrange(1, 3)):
        if rng.random() < 0.5:
            path, options = rng.choice(specific)
        else:  # deep inside: a pauses, a provider, its arguments
            deep = [p for p in _paths(data) if p and p[-1] in ("pauses", "provider", "arguments", "params", "func",
                                                              "module", "type", "conditions", "duration", "key",
                                                              "kind", "after", "target", "tolerance", "slo")]
            path = rng.choice(deep) if deep else ("method",)
            options = ["5", "[1]", "x", "{}", "~", ".nan", "-1", "{after: .inf}", "{after: x}", "{before: -5}",
                       "{after: 1e400}", "'${nope}'", "'${chaoslab_target}'", "'[/]'", big,
                       "{after: '" + big + "s'}"]
        token = TOKEN.format(j)
        try:
            parent = _get(data, path[:-1])
            parent[path[-1]] = token
        except (KeyError, IndexError, TypeError):
            continue
        raws[token] = rng.choice(options)
    text = _dump(data)
    for token, raw in raws.items():
        text = text.replace(token, raw)
    return text


def _gameday(data: Any, rng: random.Random) -> tuple[str, tuple[tuple[str, str], ...]]:
    big = _digits(rng)
    if not isinstance(data, dict) or data.get("kind") != "GameDay":
        data = _parsed(rng.choice([s for s in seeds() if s.kind == "gameday"]).path)
    data = copy.deepcopy(data)
    spec = data["spec"]
    extra: tuple[tuple[str, str], ...] = ()
    long = "x" * 300 + ".yaml"
    specific: list[tuple[tuple[Any, ...], list[str]]] = [
        (("window", "timeZone"), ["Europe", "''", "'../../etc/passwd'", "'/etc/localtime'", "\"UTC\\0\"", "5",
                                  "'[/]'", "'Europe/Berlin '", "'UTC\\n'", "Etc/GMT+99", "'" + "a" * 5000 + "'",
                                  "'Europe/../UTC'", "'\\\\x'", "'.'", "'Europe/'", "'posixrules'", "'zone.tab'",
                                  "'right/UTC'", "'localtime'"]),
        (("window", "hours"), ["'25:00-10:00'", "'10:00-09:00'", "'10:00-10:00'", "'00:00-24:00'", "10", "'1:00-2:00'",
                               "'10:00-16:00 '", "[10, 16]"]),
        (("window", "freeze"), ["[2026-02-30]", "['2026-02-30']", "[2026-13-01]", "['2027-01-06..2026-12-20']",
                                "['2026-12-20..2026-02-30']", "[2026-12-24 10:00:00]", "2026-12-24", "[[2026-12-24]]",
                                "[~]", "[5]", "['9999-12-31..9999-12-31']", "['0001-01-01']", "['0000-01-01']"]),
        (("window", "days"), ["Tue", "[tue]", "[Tue, Tue]", "[]", "[5]"]),
        (("notify",), ["[{command: \"echo 'unclosed\"}]", "[{command: []}]", "[{command: [5]}]", "[{command: ''}]",
                       "[{command: '\"'}]", "[{webhook: 'ftp://x'}]", "[{webhook: 'https://x', command: [a]}]",
                       "[{}]", "[5]", "{command: x}", "[{command: \"a \\\\\"}]", "[{command: '[/]'}]",
                       "[{webhook: 'https://[::1'}]", "[{command: \"\\0\"}]"]),
        (("steps",), ["[{file: \"a\\0b.yaml\"}]", "[{file: /dev/zero}]", "[{file: /dev/urandom}]", "[{file: .}]",
                      "[{file: fifo.yaml}]", f"[{{file: {long}}}]", "[{file: '[draft].yaml'}]", "[{file: nope.yaml}]",
                      "[{file: '../..'}]", "[{file: '/proc/self/mem'}]", "[{file: /dev/stdin}]",
                      "[{file: self.yaml}]", "[{file: 'dir.yaml'}]", "[{file: loop.yaml}]",
                      "[{file: ../etcd-leader-kill.yaml, runs: 2.0}]", "[{file: ../etcd-leader-kill.yaml, runs: .inf}]",
                      "[{file: ../etcd-leader-kill.yaml, pause: 1e400}]", "[{file: ../etcd-leader-kill.yaml, after: [x]}]",
                      "[{file: ../etcd-leader-kill.yaml, name: a, after: [b]}, {file: ../apiserver-kill.yaml, name: b, after: [a]}]",
                      "[{file: ../etcd-leader-kill.yaml, overrides: {duration: .nan}}]",
                      "[{experiment: {kind: Experiment}}]", "[{experiment: 5}]", "[{experiment: [1]}]",
                      "[{file: ../etcd-leader-kill.yaml, experiment: {}}]", "[{}]", "[5]", "x",
                      "[{file: ../compact-scheduler.yaml}, {file: ../compact-scheduler.yaml}]",
                      "[{file: ../../probes/control-plane.yaml}]", "[{file: ../manifests/shop-web.yaml}]",
                      "[{file: ../etcd-leader-kill.ctk.json}]", "[{file: " + "../" * 3000 + "x.yaml}]"]),
        (("repeat",), ["2.0", ".inf", ".nan", "0", big, "'2'"]),
        (("pause",), [".nan", ".inf", "1e400", big + "s", "-1", "'5 s'"]),
        (("overrides",), ["{duration: .nan}", "{duration: 1e400}", "{settle: " + big + "}", "{runs: 2}", "[1]",
                          "{duration: '" + big + "h'}"]),
        (("abort",), ["{apiserverUnavailable: .inf}", "{apiserverUnavailable: [1]}", "{lostWrites: 1}", "{apiserverUnavailable: 1e400}"]),
        (("target",), ["{kind: ssh}", "{kind: ssh, hosts: cp1}", "{kind: lab, name: 5}", "lab", "{kind: '[/]'}"]),
    ]
    raws: dict[str, str] = {}
    for j in range(rng.randrange(1, 3)):
        path, options = rng.choice(specific)
        raw = rng.choice(options)
        if "fifo.yaml" in raw:
            extra += (("experiments/gamedays/fifo.yaml", "fifo"),)
        if "dir.yaml" in raw:
            extra += (("experiments/gamedays/dir.yaml", "directory"),)
        if "loop.yaml" in raw:
            extra += (("experiments/gamedays/loop.yaml", "symlink-loop"),)
        token = TOKEN.format(j)
        parent = spec
        for k in path[:-1]:
            if not isinstance(parent.get(k), dict):
                parent[k] = {}
            parent = parent[k]
        parent[path[-1]] = token
        raws[token] = raw
    text = _dump(data)
    for token, raw in raws.items():
        text = text.replace(token, raw)
    return text, extra


def _structure(data: Any, rng: random.Random) -> str:
    data = copy.deepcopy(data)
    paths = _paths(data)
    if not paths:
        return _dump(data)
    path = rng.choice(paths)
    parent = _get(data, path[:-1])
    op = rng.randrange(5)
    if op == 0:
        del parent[path[-1]]
    elif op == 1:
        parent[path[-1]] = None
    elif op == 2 and isinstance(parent, dict):
        parent[rng.choice(["bogus", "kind", "spec", "metadata", "apiVersion", "Duration", "faults", "[/]"])] = \
            rng.choice([1, "x", [], {}, None])
    elif op == 3 and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[path[-1]]))
    else:  # a duplicate key, written twice in the text
        text = _dump(data)
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "\n".join(lines)
    return _dump(data)


def case(seed: int, index: int) -> Case:
    """The input number `index` of run `seed`. The first indexes go once through every family, so even a
    short run covers them all."""
    rng = random.Random(f"{seed}:{index}")
    family = FAMILIES[index % len(FAMILIES)] if index < 4 * len(FAMILIES) else rng.choice(FAMILIES)
    all_seeds = seeds()
    if family == "gameday-field":
        s = rng.choice([x for x in all_seeds if x.kind == "gameday"])
    elif family == "chaostoolkit":
        s = rng.choice([x for x in all_seeds if x.kind == "chaostoolkit"])
    elif family == "ssh-target":
        s = rng.choice([x for x in all_seeds if x.path.endswith("-ssh.yaml")])
    else:
        s = rng.choice(all_seeds)
    data = _parsed(s.path)
    other = rng.choice(all_seeds).text
    path = s.path
    special = ""
    extra: tuple[tuple[str, str], ...] = ()
    content: bytes | None
    if family == "control-char":
        content = _control_chars(s.text, rng)
    elif family == "bad-tag":
        content = _with_raw(data, rng, bad_tag, n=rng.randrange(1, 3)).encode()
    elif family == "impossible-date":
        paths = _field_paths(data, ("freeze",)) if s.kind == "gameday" else _paths(data)
        if s.kind == "gameday" and rng.random() < 0.6:
            data = copy.deepcopy(data)
            data["spec"].setdefault("window", {})["freeze"] = ["TOKEN_DATE"]
            content = _dump(data).replace("TOKEN_DATE", impossible_date(rng)).encode()
        else:
            content = _with_raw(data, rng, _orig(impossible_date), paths).encode()
    elif family == "huge-number":
        paths = _field_paths(data, _NUMERIC_KEYS) if rng.random() < 0.8 else None
        content = _with_raw(data, rng, _orig(huge_number), paths, n=rng.randrange(1, 3)).encode()
    elif family == "deep-nesting":
        if rng.random() < 0.3:  # block nesting
            d = rng.choice([100, 1000, 3000])
            block = "".join("  " * i + "a:\n" for i in range(d)) if rng.random() < 0.5 else \
                "".join("  " * i + "- \n" for i in range(d))
            content = (s.text + "\n" + block).encode() if rng.random() < 0.5 else block.encode()
        else:
            content = _with_raw(data, rng, _orig(deep_nesting)).encode()
    elif family == "alias-bomb":
        content = _with_raw(data, rng, _orig(alias_bomb)).encode()
    elif family == "nan-inf":
        paths = _field_paths(data, _NUMERIC_KEYS) if rng.random() < 0.8 else None
        content = _with_raw(data, rng, _orig(nan_inf), paths, n=rng.randrange(1, 3)).encode()
    elif family == "float-for-int":
        paths = _field_paths(data, _INT_KEYS) if rng.random() < 0.8 else None
        content = _with_raw(data, rng, _orig(float_for_int), paths, n=rng.randrange(1, 3)).encode()
    elif family == "markup":
        if rng.random() < 0.3:
            path = str(Path(s.path).parent / rng.choice(["[draft].yaml", "[/].yaml", "[bold]x[/bold].yaml",
                                                          "[red]", "x[/]y.yml", "[link=x]a.yaml"]))
            content = s.text.encode()
        else:
            keys = rng.random() < 0.2
            paths = _field_paths(data, ("name", "kind", "component", "select", "signal", "description", "title",
                                        "file", "after", "confirm", "timeZone", "hours", "address", "selector"))
            content = _with_raw(data, rng, _orig(markup), None if keys else paths, keys=keys).encode()
    elif family == "wrong-type":
        content = _with_raw(data, rng, _orig(wrong_type), n=rng.randrange(1, 3), keys=rng.random() < 0.2).encode()
    elif family == "ssh-target":
        content = _ssh(data, rng).encode()
    elif family == "chaostoolkit":
        content = _chaostoolkit(data, rng).encode()
        path = path.replace(".json", ".yaml") if rng.random() < 0.5 else path
    elif family == "gameday-field":
        text, extra = _gameday(data, rng)
        content = text.encode()
    elif family == "special-file":
        special = rng.choice(["fifo", "dev-zero", "dev-urandom", "directory", "symlink-loop", "missing",
                              "dir-with-fifo", "big", "dev-null", "big-line", "socket", "unreadable"])
        content = s.text.encode()
        path = str(Path(s.path).parent / f"special-{special}.yaml")
    elif family == "file-name":
        name = rng.choice(["x" * 300 + ".yaml", "x" * 250 + ".yaml", "a\nb.yaml", "a b.yaml", "%s%n.yaml",
                           ".yaml", "-x.yaml", "é€😀.yaml", "\\x.yaml", "'\".yaml", "a" * 100 + "/" + "b" * 100 + ".yaml",
                           "/".join(["d" * 200] * 25) + "/x.yaml", "x.YAML", "x.yaml.", "~x.yaml", "$HOME.yaml"])
        path = str(Path(s.path).parent / name)
        content = s.text.encode()
    elif family == "text":
        content = _text_mutation(s.text, rng, other)
    else:
        content = _structure(data, rng).encode()
    if family not in ("special-file", "file-name", "control-char", "text") and rng.random() < 0.15 and content:
        content = _text_mutation(content.decode("utf-8", "surrogatepass"), rng, other)
    # validate always; the other two load through other entry points (load_game_day, load) where the input
    # is theirs, and now and then where it is not.
    commands = ["validate"]
    if s.kind == "gameday" or rng.random() < 0.1:
        commands.append("gameday")
    if (s.kind in ("experiment", "chaostoolkit") and rng.random() < 0.6) or rng.random() < 0.1:
        commands.append("export")
    return Case(family, s.path, path, content, special, tuple(commands), extra)
