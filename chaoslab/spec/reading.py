"""Reading input safely: files and YAML as the spec loader, the game-day loader and the probe-set loader
take them. Everything that can go wrong becomes a `SpecError` (or, for YAML, a `yaml.MarkedYAMLError` with
the line) instead of a hang, a memory blow-up or a traceback:

- `read_text` opens only regular files (a FIFO, a device such as /dev/zero, a directory or a socket is
  refused before anything is read), reads at most `MAX_BYTES`, and names the file in every message;
- `BoundedLoader` composes YAML with a nesting limit (`MAX_DEPTH`), an alias budget (`MAX_ALIASES`, and
  `MAX_NODES` for what the aliases expand to, so a "billion laughs" is refused at once), refuses an alias
  inside the node it names, and turns every constructor failure (`!!int 5s`, `2026-02-30`, an integer of
  5,000 digits, `.inf`) into a `ConstructorError` at the value's line.

    >>> text = read_text(Path("experiments/etcd-leader-kill.yaml"))            # doctest: +SKIP
    >>> loader = BoundedLoader(text)                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.scanner import ScannerError

from chaoslab.errors import SpecError

MAX_BYTES = 1 << 20
"""Largest file read (1 MiB; the shipped experiments are about 1 KB)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (the schema's deepest field is about 8 levels down)."""
MAX_ALIASES = 100
"""Most aliases (`*name`) in one document."""
MAX_NODES = 100_000
"""Most values in one document once its aliases are expanded."""

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def read_text(path: Path | str) -> str:
    """The text of a regular file of at most `MAX_BYTES` bytes, UTF-8 (a byte-order mark is dropped)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: opening a FIFO must not wait for a writer
    except ValueError as exc:  # a NUL in the name
        raise SpecError([f"{path!r}: not a file name ({exc})"]) from exc
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise SpecError([f"{path}: {what}, not a regular file; give an experiment file (*.yaml)"])
        if info.st_size > MAX_BYTES:
            raise SpecError([f"{path}: {info.st_size} bytes; a chaoslab file is at most {MAX_BYTES} bytes"])
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:  # it grew while being read
            raise SpecError([f"{path}: more than {MAX_BYTES} bytes; a chaoslab file is at most that"])
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SpecError([f"{path}:{line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from exc


def _constructor_message(node: yaml.Node, exc: BaseException) -> str:
    value = node.value if isinstance(node, yaml.ScalarNode) else None
    shown = repr(value) if len(str(value)) <= 60 else repr(str(value)[:57] + "...")
    tag = node.tag.rsplit(":", 1)[-1]
    if isinstance(exc, ValueError) and "digits" in str(exc):
        return f"{_shorten(str(value))} is too large an integer; chaoslab numbers are far smaller"
    if tag == "timestamp":
        return f"{shown} is not a valid date or time ({exc}); quote it if it is not meant as a date"
    if tag in ("int", "float", "bool"):
        what = {"int": "an integer", "float": "a number", "bool": "true or false"}[tag]
        return f"{shown} is not {what} (tagged !!{tag}); remove the tag or fix the value"
    return f"{shown} cannot be read as !!{tag} ({type(exc).__name__}: {exc})"


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader (pure Python: every node keeps its line) with budgets; see the module docstring."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._open: set[str] = set()
        self._sizes: dict[int, int] = {}

    # The scanner looks ahead over a whole line of `[[[[…` before the composer sees the first node (each
    # could start a key), in time quadratic in the depth: refuse the nesting where it is scanned.
    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(None, None, f"nested more than {MAX_DEPTH} levels deep", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise ScannerError(None, None, f"nested more than {MAX_DEPTH} levels deep", self.get_mark())
        added: bool = super().add_indent(column)
        return added

    def compose_document(self) -> Any:
        self._depth = self._aliases = self._nodes = 0
        self._open.clear()
        self._sizes.clear()
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise ComposerError(None, None, f"the alias *{event.anchor} is inside the node &{event.anchor} "
                                    "it names (a loop); write the value out", mark)
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ComposerError(None, None, f"more than {MAX_ALIASES} aliases (*name) in one document; "
                                    "write the values out", mark)
            if event.anchor in self.anchors:
                self._count(self._sizes.get(id(self.anchors[event.anchor]), 1), mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        before = self._nodes
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)
        self._count(1, event.start_mark)
        self._sizes[id(node)] = self._nodes - before
        return node

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise ComposerError(None, None, f"the document expands to more than {MAX_NODES} values (aliases "
                                "repeat whole subtrees); write it without them", mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError, RecursionError) as exc:
            raise ConstructorError(None, None, _constructor_message(node, exc), node.start_mark) from exc

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return super().construct_document(node)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError, RecursionError) as exc:
            raise ConstructorError(None, None, _constructor_message(node, exc), node.start_mark) from exc

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise ConstructorError(None, None, f"{node.value!r:.60} is not a finite number; no chaoslab field "
                                   "takes infinity or NaN", node.start_mark)
        return value


    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        # Decimal integers stop at 4,300 digits in Python itself; hex, octal and 1:30 (base 60) do not.
        value: int = super().construct_yaml_int(node)
        if abs(value) >= 10**MAX_DIGITS:
            raise ConstructorError(None, None, f"{_shorten(node.value)} is too large an integer; chaoslab numbers "
                                   "are far smaller", node.start_mark)
        return value


def _shorten(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:40] + "...") + f" ({len(text)} characters)"


MAX_DIGITS = 30
"""Digits of the largest integer YAML may hold (the schema's numbers stop at 2^53, 16 digits)."""

BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_yaml_float)
BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def reader_problem(exc: yaml.YAMLError, text: str, file: str) -> str:
    """A YAML error as a problem with its line: marked errors carry it; the reader's (a control character)
    carries an offset into the text."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        place = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" \
            if exc.context and exc.context_mark else ""
        return f"{place}: invalid YAML: {exc.problem}{context}"
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[:exc.position].count("\n") + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return (f"{file}:{line}: invalid YAML: the control character {char} is not allowed in YAML text; "
                "remove it (write it as an escape inside double quotes if it is meant)")
    return f"{file}: invalid YAML: {exc}"
