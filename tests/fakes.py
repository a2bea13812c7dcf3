"""Test fakes shared by the unit tests (pure logic only: nothing here stands in for etcd or the apiserver in
a test that claims a fault or probe works; those run on the real lab).

- `FakeTarget`: a `Target` (it derives from `TargetBase`, so it answers every capability question as a
  self-managed cluster that can do what it is asked) with three hosts `cp1..cp3`, an optional fake API,
  and a record of what was done to it: signals, holds, commands, heartbeats. Tests subclass it to change
  one answer.
- `FakeApi`: the `KubeApi` calls a fault or probe makes, answered from `routes` (path → answer, or a
  callable of the query parameters), every call recorded.

A test that needs a particular cluster (nodes and pods of a drain, a PDB answering 429) subclasses these
and overrides only what its scenario answers differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chaoslab.clients.hosts import Command, Endpoint, Wrap, in_netns
from chaoslab.targets import TargetBase

Answer = dict[str, Any] | Callable[..., dict[str, Any]]


class FakeApi:
    server = "https://fake:6443"

    def __init__(self, routes: Mapping[str, Answer] | None = None) -> None:
        self.routes: dict[str, Answer] = dict(routes or {})
        self.calls: list[tuple[str, str, Any]] = []

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        self.calls.append(("get", path, params))
        if path not in self.routes:
            raise AssertionError(f"unexpected GET {path}")
        answer = self.routes[path]
        return answer(**params) if callable(answer) else answer

    def create(self, path: str, body: Any, **kw: Any) -> dict[str, Any]:
        self.calls.append(("create", path, body))
        return dict(body) if isinstance(body, dict) else {}

    def patch(self, path: str, body: Any, **kw: Any) -> dict[str, Any]:
        self.calls.append(("patch", path, body))
        return {}

    def delete(self, path: str, **kw: Any) -> dict[str, Any]:
        self.calls.append(("delete", path, kw))
        return {}


class FakeTarget(TargetBase):
    name = "fake"
    renewal_window = 5.0

    def __init__(self, hosts: Sequence[str] = ("cp1", "cp2", "cp3"), api: Any = None,
                 lock_path: Path = Path("/nonexistent/run.lock")) -> None:
        self.names = list(hosts)
        self._api = api if api is not None else FakeApi()
        self._lock_path = lock_path
        self.signals: list[tuple[str, str, str]] = []
        self.held: dict[str, bool] = {}
        self.ran: list[tuple[str, ...]] = []
        self.commands: list[Command] = []
        self.heartbeats: list[tuple[str, bool]] = []

    @property
    def lock_path(self) -> Path:
        return self._lock_path

    def api(self) -> Any:
        return self._api

    def apiserver_endpoints(self) -> dict[str, str]:
        return {"lb": "https://fake:6443"}

    def etcd_members(self, timeout: float = 1.0) -> dict[str, Any]:
        return {}

    def hosts(self, component: str) -> list[str]:
        return list(self.names)

    def pid(self, component: str, host: str) -> int | None:
        return 100

    def signal(self, component: str, host: str, signal: str) -> int:
        self.signals.append((component, host, signal))
        return 100

    def hold(self, component: str, host: str, held: bool) -> None:
        self.held[f"{component}@{host}"] = held

    def endpoint(self, host: str) -> Endpoint:
        return Endpoint(host, f"10.0.0.{self.names.index(host) + 11}")

    def clients(self, host: str) -> Endpoint:
        return Endpoint("clients", "10.0.0.2", managed=False)

    def host_wrap(self, host: str) -> Wrap:
        return in_netns(f"fake-{host}")

    def python(self, host: str) -> tuple[str, ...]:
        return ("/venv/bin/python",)

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        self.ran += [c.argv for c in commands]
        self.commands += commands  # whole, stdin included
        return ["" for _ in commands]

    def stop_heartbeat(self, node: str, stopped: bool) -> None:
        self.heartbeats.append((node, stopped))

    def describe(self) -> dict[str, object]:
        return {"kind": "fake", "name": self.name, "renewal_window": self.renewal_window}


def lay_out_run(path: Path, experiment: Any, timelines: Sequence[Any], renewal_window: float = 5.0,
                policy: Any = None) -> Any:
    """A run directory as the executor and the run session leave it (experiment, gate policy, timelines),
    with its reports written from memory; returns the assessment."""
    from chaoslab.execute.rundir import RunDir
    from chaoslab.judge.assess import assess
    from chaoslab.reports import write_reports

    run_dir = RunDir(path)
    run_dir.write_experiment(experiment)
    if policy is not None:
        run_dir.write_policy(policy)
    for i, tl in enumerate(timelines, 1):
        run_dir.save_timeline(i, tl)
    assessment = assess(experiment, timelines, renewal_window, run_dir.policy())
    write_reports(run_dir, experiment, assessment, timelines)
    return assessment
