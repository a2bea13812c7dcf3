"""The Prometheus export: a textfile the collector can parse, and a Pushgateway push (to a local server)."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from measure.synthetic import STARTED_WALL, scheduler_kill
from prometheus_client.parser import text_string_to_metric_families

from chaoslab.judge.gate import Policy, evaluate
from chaoslab.judge.measure import measure
from chaoslab.judge.verdict import judge
from chaoslab.reports import prometheus
from chaoslab.reports.prometheus import EXPORTED, Result, push, write_textfile
from reports.test_reports import experiment

FINISHED = STARTED_WALL + 120.0


def result() -> Result:
    exp = experiment()
    tl = scheduler_kill()
    verdict = judge(exp, [measure(tl, exp.steady_state, exp.settle, 5.0)])
    return Result(exp.name, verdict, evaluate(verdict, Policy(frozenset({"recoveryTime"}), 0.1)), [tl], FINISHED)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found[(name, frozenset({"experiment": "scheduler-leader-kill", **labels}.items()))]


def test_textfile_parses_and_carries_verdicts_metrics_and_fault_windows(tmp_path: Path) -> None:
    path = write_textfile(tmp_path / "textfile" / "chaoslab.prom", [result()])
    found = samples(path.read_text())
    assert {name for name, _ in found} == set(EXPORTED)
    assert value(found, "chaoslab_run_completed") == 1
    assert value(found, "chaoslab_run_passed") == 0  # schedulerTimeToNewLeader 17 s > 10 s …
    assert value(found, "chaoslab_gate_passed") == 1  # … but only recoveryTime gates
    assert value(found, "chaoslab_runs") == 1
    assert value(found, "chaoslab_run_finished_timestamp_seconds") == FINISHED
    assert value(found, "chaoslab_slo_passed", slo="schedulerTimeToNewLeader", aggregate="max") == 0
    assert value(found, "chaoslab_slo_gating", slo="schedulerTimeToNewLeader", aggregate="max") == 0
    assert value(found, "chaoslab_slo_measured", slo="recoveryTime", aggregate="max", unit="s") == 17.0
    assert value(found, "chaoslab_slo_threshold", slo="recoveryTime", aggregate="p95", unit="s") == 20.0
    # The bracket: the true recovery lies between the sample before the Lease came back and the one after.
    low = value(found, "chaoslab_slo_measured_low", slo="recoveryTime", aggregate="max", unit="s")
    high = value(found, "chaoslab_slo_measured_high", slo="recoveryTime", aggregate="max", unit="s")
    assert low < 17.0 <= high
    assert value(found, "chaoslab_slo_inconclusive", slo="recoveryTime", aggregate="max") == 0
    assert value(found, "chaoslab_slo_warning", slo="schedulerLeaderElections", aggregate="max") == 1
    assert value(found, "chaoslab_metric_value", metric="recoveryTime", run="1", unit="s") == 17.0
    assert value(found, "chaoslab_metric_value", metric="schedulerLeaderElections", run="1", unit="count") == 1
    window = {"run": "1", "fault": "kill-process", "index": "0"}
    assert value(found, "chaoslab_fault_start_timestamp_seconds", **window) == STARTED_WALL + 10.0
    assert value(found, "chaoslab_fault_end_timestamp_seconds", **window) == STARTED_WALL + 40.0
    # A metric the run could not measure is absent, not zero.
    assert not any(n == "chaoslab_metric_value" and ("metric", "lostWrites") in labels for n, labels in found)
    assert not list(tmp_path.glob("textfile/*.tmp*"))  # written atomically


def test_an_experiment_that_could_not_run_is_marked_not_completed(tmp_path: Path) -> None:
    path = write_textfile(tmp_path / "m.prom", [Result("etcd-leader-kill", finished=FINISHED, error="RunAborted: x")])
    found = samples(path.read_text())
    key = frozenset({"experiment": "etcd-leader-kill"}.items())
    assert found[("chaoslab_run_completed", key)] == 0
    assert ("chaoslab_run_passed", key) not in found


class Capture(BaseHTTPRequestHandler):
    pushes: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Capture.pushes.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    Capture.pushes = []
    server = HTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_push_puts_one_group_per_experiment(gateway: str) -> None:
    push(gateway, "ci-gate", [result(), Result("etcd-leader-kill", finished=FINISHED, error="RunAborted: x")])
    assert [(m, p) for m, p, _ in Capture.pushes] == [
        ("PUT", "/metrics/job/ci-gate/experiment/scheduler-leader-kill"),
        ("PUT", "/metrics/job/ci-gate/experiment/etcd-leader-kill")]
    found = samples(Capture.pushes[0][2].decode())
    assert value(found, "chaoslab_gate_passed") == 1
    assert all(("experiment", "scheduler-leader-kill") in labels for _, labels in found)


def test_push_to_a_gateway_that_is_not_there_raises_an_oserror() -> None:
    with pytest.raises(OSError):
        prometheus.push("http://127.0.0.1:9", "x", [result()], timeout=2)
