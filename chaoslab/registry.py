"""One shape for every plugin registry: fault kinds (`chaoslab.faults`), probe kinds (`chaoslab.probes`) and
target kinds (`chaoslab.targets`). Built-ins are registered explicitly; a third-party kind comes from the
registry's entry-point group the first time it is asked for (nothing is walked or imported at start-up).
Each plugin's contract is checked once, when it is registered, and a broken one is refused with an error
that names it (pluggy validates hook implementations the same way), so callers never probe a plugin.

    >>> PROBES = Registry("probe", "chaoslab.probes", check=lambda cls: [])          # doctest: +SKIP
    >>> PROBES.register(EtcdProbe); PROBES.get("etcd") is EtcdProbe                   # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from chaoslab.errors import SpecError

P = TypeVar("P", bound=type[Any])


def plugin_name(plugin: type[Any]) -> str:
    return f"{plugin.__module__}.{plugin.__qualname__}"


class Registry(dict[str, P], Generic[P]):
    """kind → plugin class. `check(plugin)` returns what is wrong with a plugin (empty: nothing)."""

    def __init__(self, what: str, group: str, check: Callable[[P], Iterable[str]]) -> None:
        super().__init__()
        self.what = what
        self.group = group
        self.check = check

    def register(self, plugin: P) -> P:
        name = plugin_name(plugin)
        kind = plugin.__dict__.get("kind", getattr(plugin, "kind", None))
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"{self.what} plugin {name} has no `kind`")
        if kind in self and self[kind] is not plugin:
            raise TypeError(f"{self.what} kind {kind!r} is claimed by {self[kind].__name__} and {plugin.__name__} "
                            f"({name})")
        problems = list(self.check(plugin))
        if problems:
            raise TypeError(f"{self.what} plugin {name}: {'; '.join(problems)}")
        self[kind] = plugin
        return plugin

    def kinds(self) -> list[str]:
        """Every kind registered so far, and every kind the entry-point group offers (names only)."""
        return sorted({*self, *(ep.name for ep in entry_points(group=self.group))})

    def get_kind(self, kind: str) -> P:
        """The plugin of `kind`, loading it from the entry-point group if needed; `SpecError` naming the known
        kinds when there is none."""
        if kind not in self:
            for ep in entry_points(group=self.group):
                if ep.name == kind:
                    self.register(ep.load())
        if kind not in self:
            raise SpecError([f"unknown {self.what} kind {kind!r}; known: {', '.join(sorted(self))}"])
        return self[kind]
