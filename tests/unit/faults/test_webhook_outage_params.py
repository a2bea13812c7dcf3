"""webhook-outage's pure parts: parameters, rules, the control-plane consent, certificates, the server's
answers, the configuration it registers, and the admission metrics."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from fakes import FakeTarget

from chaoslab.errors import RevertError, SpecError
from chaoslab.faults import FAULTS, build, param_problems
from chaoslab.faults.base import Injection, Undo
from chaoslab.faults.webhook_outage import (
    WebhookOutage,
    WebhookOutageParams,
    control_plane_matches,
    make_certificates,
    remove_webhook,
)
from chaoslab.faults.webhook_server import review_answer, serve
from chaoslab.judge.measure import measure
from chaoslab.plan.guard import radius_problems
from chaoslab.spec.model import BlastRadius, Experiment, FaultSpec
from chaoslab.timeline import FORMAT, Timeline


def test_registered() -> None:
    assert FAULTS["webhook-outage"] is WebhookOutage


@pytest.mark.parametrize(("params", "field"), [
    ({"mode": "slow"}, "mode"), ({"failurePolicy": "fail"}, "failurePolicy"), ({"timeoutSeconds": 31}, "timeoutSeconds"),
    ({"timeoutSeconds": 0}, "timeoutSeconds"), ({"operations": ["PATCH"]}, "operations"),
    ({"namespaces": ["*", "default"]}, "namespaces"), ({"badCert": "self-signed"}, "badCert"),
    ({"type": "both"}, "type"), ({"resources": []}, "resources"),
])
def test_bad_parameters_are_named(params: dict[str, Any], field: str) -> None:
    assert [name for name, _ in param_problems("webhook-outage", params)] == [field]
    with pytest.raises(SpecError, match=f"webhook-outage.{field}"):
        build("webhook-outage", params)


def test_rules_group_resources_by_api_group() -> None:
    p = WebhookOutageParams(resources=("configmaps", "leases.coordination.k8s.io", "nodes/status"),
                            operations=("UPDATE",))
    assert p.rules() == [
        {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["configmaps", "nodes/status"],
         "scope": "*"},
        {"apiGroups": ["coordination.k8s.io"], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["leases"],
         "scope": "*"}]
    assert WebhookOutageParams(resources=("*",)).rules()[0]["resources"] == ["*"]


@pytest.mark.parametrize(("target", "control_plane"), [
    ("webhook@chaoslab-webhook-test/configmaps", False), ("webhook@default/pods", False),
    ("webhook@kube-system/configmaps", True), ("webhook@kube-node-lease/leases.coordination.k8s.io", True),
    ("webhook@*/configmaps", True), ("webhook@default/leases", True), ("webhook@default/nodes/status", True),
    ("webhook@default/*", True), ("webhook@default/namespaces", True),
])
def test_what_counts_as_the_control_planes_own_writes(target: str, control_plane: bool) -> None:
    assert bool(control_plane_matches([target])) is control_plane


def injection(targets: tuple[str, ...]) -> Injection:
    return Injection("webhook-outage", 0, "admission", "hang", targets, (Undo("delete-webhook", {}),))


def test_the_guard_refuses_control_plane_webhooks_without_consent() -> None:
    inj = injection(("webhook@kube-system/leases.coordination.k8s.io",))
    plain = Experiment("x", (FaultSpec("webhook-outage"),), 10.0)
    [problem] = radius_problems(plain, [inj], 0, FakeTarget())
    assert problem.startswith("spec.blastRadius.allowControlPlaneWebhooks:")
    allowed = Experiment("x", (FaultSpec("webhook-outage"),), 10.0,
                         blast_radius=BlastRadius(allowControlPlaneWebhooks=True))
    assert radius_problems(allowed, [inj], 0, FakeTarget()) == []
    assert radius_problems(plain, [injection(("webhook@chaoslab-webhook-test/configmaps",))], 0, FakeTarget()) == []


def test_the_configuration_points_at_the_server_and_selects_labelled_namespaces() -> None:
    fault = build("webhook-outage", {"mode": "deny", "failurePolicy": "Ignore", "timeoutSeconds": 3}, duration=20)
    assert isinstance(fault, WebhookOutage)
    params = {"tag": "w0-12345678", "name": "chaoslab-webhook-outage-w0-12345678", "address": "10.213.0.3",
              "port": 23456, "namespaces": ["chaoslab-webhook-test"]}
    config = fault.configuration(params, b"PEM")
    [hook] = config["webhooks"]
    assert config["kind"] == "ValidatingWebhookConfiguration"
    assert hook["clientConfig"]["url"] == "https://10.213.0.3:23456/deny"
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 3 and hook["sideEffects"] == "None"
    assert hook["namespaceSelector"] == {"matchLabels": {"chaoslab.io/webhook-outage": "w0-12345678"}}
    assert "namespaceSelector" not in fault.configuration({**params, "namespaces": []}, b"PEM")["webhooks"][0]
    assert fault.deadline() == 80
    switch = fault.switch_command({**params, "marker": "chaoslab-w0-12345678", "dir": "/tmp/x/w0-12345678"}).argv
    assert switch[:3] == ("setsid", "-f", "sh") and switch[-1] == "chaoslab-w0-12345678"
    assert "sleep 80" in switch[4] and "--heal /tmp/x/w0-12345678.switch.json" in switch[4]


@pytest.mark.parametrize("bad", [None, "expired", "wrong-ca"])
def test_certificates(tmp_path: Path, bad: str | None) -> None:
    bundle = make_certificates(tmp_path / "w", "10.213.0.3", bad)
    ca = x509.load_pem_x509_certificate(bundle)
    cert = x509.load_pem_x509_certificate((tmp_path / "w" / "server.crt").read_bytes())
    assert (cert.issuer == ca.subject) is (bad != "wrong-ca")
    assert (cert.not_valid_after_utc < dt.datetime.now(dt.UTC)) is (bad == "expired")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.213.0.3"]


def test_review_answer_keeps_the_uid_and_version() -> None:
    review = {"apiVersion": "admission.k8s.io/v1beta1", "request": {"uid": "abc"}}
    assert review_answer(review, True) == {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                                           "response": {"uid": "abc", "allowed": True}}


@pytest.mark.parametrize(("mode", "status", "allowed"), [("deny", 200, False), ("allow", 200, True),
                                                          ("error500", 500, None)])
def test_the_server_answers_as_its_mode_says(tmp_path: Path, mode: str, status: int, allowed: bool | None) -> None:
    bundle = make_certificates(tmp_path / "w", "127.0.0.1")
    (tmp_path / "ca.crt").write_bytes(bundle)
    stop, ready = threading.Event(), threading.Event()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "log.jsonl"
    thread = threading.Thread(target=serve, args=(mode, "127.0.0.1", port, str(tmp_path / "w" / "server.crt"),
                                                  str(tmp_path / "w" / "server.key"), 0.0, str(log), 1e12, stop,
                                                  ready.set), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "request": {
            "uid": "u1", "namespace": "ns", "operation": "CREATE", "resource": {"resource": "configmaps"}}}).encode()
        request = urllib.request.Request(f"https://127.0.0.1:{port}/{mode}", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as resp:
                got, answer = resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            got, answer = exc.code, None
        assert got == status
        if allowed is not None:
            assert answer["response"]["allowed"] is allowed and answer["response"]["uid"] == "u1"
        [entry] = [json.loads(line) for line in log.read_text().splitlines()]
        assert (entry["namespace"], entry["resource"], entry["operation"], entry["mode"]) == (
            "ns", "configmaps", "CREATE", mode)
    finally:
        stop.set()
        thread.join(5)


def test_admission_metrics_count_the_writes_sent_while_the_fault_held() -> None:
    records: list[dict[str, Any]] = [{"event": "run-start", "t": 0.0, "detail": {}},
                                     {"event": "run-end", "t": 10.0, "detail": {}}]
    for i in range(10):
        t = float(i)
        held = 2 <= t < 7
        records.append({"probe": "admission", "subject": "matched", "t": t,
                        "values": {"ok": not held, "seconds": 10.0 if held else 0.01, "error": "x" if held else None}})
        records.append({"probe": "admission", "subject": "unmatched", "t": t,
                        "values": {"ok": True, "seconds": 0.02, "error": None}})
    records += [{"event": "inject", "t": 1.0, "detail": {"component": "admission", "targets": []}},
                {"event": "webhook", "t": 1.5, "detail": {}},
                {"event": "revert", "t": 7.0, "detail": {"ok": True}}]
    records.sort(key=lambda r: r["t"])
    m = measure(Timeline.from_records([{"format": FORMAT, "startedWall": 0.0}, *records]), (), settle=1.0)
    assert m.values["matchedWriteErrorRate"] == 1.0 and m.values["matchedWriteLatency"] == 10.0
    assert m.values["unmatchedWriteErrorRate"] == 0.0 and m.values["unmatchedWriteLatency"] == 0.02
    assert "5 of 5 matched writes failed" in m.evidence["matchedWriteErrorRate"]


def test_on_a_pod_the_configuration_names_the_service_and_the_certificate_its_dns_name(tmp_path: Path) -> None:
    from chaoslab.faults import webhook_pod
    from chaoslab.faults.webhook_outage import undo_lines

    fault = build("webhook-outage", {"mode": "deny"}, duration=20)
    assert isinstance(fault, WebhookOutage)
    params = {"tag": "w0-12345678", "name": "chaoslab-webhook-outage-w0-12345678", "placement": "pod",
              "podNamespace": "chaoslab", "address": webhook_pod.dns_name("w0-12345678", "chaoslab"),
              "port": webhook_pod.PORT, "namespaces": ["chaoslab-webhook-test"], "type": "validating",
              "marker": "chaoslab-w0-12345678", "dir": str(tmp_path / "w0-12345678"), "label": "l"}
    [hook] = fault.configuration(params, b"PEM")["webhooks"]
    assert hook["clientConfig"]["service"] == {"namespace": "chaoslab", "name": "chaoslab-webhook-w0-12345678",
                                               "path": "/deny", "port": 8443}
    assert "url" not in hook["clientConfig"]
    make_certificates(tmp_path / "w", params["address"])
    cert = x509.load_pem_x509_certificate((tmp_path / "w" / "server.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["chaoslab-webhook-w0-12345678.chaoslab.svc"]
    assert any("delete pod, service, secret and configmap chaoslab/chaoslab-webhook-w0-12345678" in line
               for line in undo_lines(params))


def test_the_server_pod_runs_the_program_unprivileged_until_the_deadline() -> None:
    from chaoslab.faults import webhook_pod

    made = webhook_pod.objects("w0-1", "chaoslab", "python:3.12-alpine", "hang", 15.0, 1767225600, 80, b"C", b"K")
    by_kind = {o["kind"]: o for o in made}
    assert [o["kind"] for o in made] == ["ConfigMap", "Secret", "Pod", "Service"]  # the Pod mounts the first two
    assert "def serve(" in by_kind["ConfigMap"]["data"]["webhook_server.py"]
    pod = by_kind["Pod"]["spec"]
    [container] = pod["containers"]
    assert container["command"][:2] == ["python", "/chaoslab/webhook_server.py"]
    assert container["command"][container["command"].index("--until") + 1] == "1767225600"
    assert container["command"][container["command"].index("--hang") + 1] == "15"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["activeDeadlineSeconds"] == 110
    assert "hostNetwork" not in pod and "privileged" not in container["securityContext"]
    assert by_kind["Service"]["spec"]["selector"] == by_kind["Pod"]["metadata"]["labels"]
    assert [o["kind"] for o in webhook_pod.objects("w0-1", "chaoslab", "p", "unreachable", 1, 1, 1, b"", b"")] \
        == ["Service"]


def test_the_server_program_runs_without_the_chaoslab_package(tmp_path: Path) -> None:
    """What the pod runs: the file alone, in an interpreter that cannot import chaoslab."""
    import subprocess
    import sys

    from chaoslab.faults import webhook_server

    (tmp_path / "webhook_server.py").write_text(Path(webhook_server.__file__).read_text())
    out = subprocess.run([sys.executable, "-I", str(tmp_path / "webhook_server.py"), "--help"], check=False, cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "--mode" in out.stdout


def test_where_the_server_runs_follows_what_the_target_declares() -> None:
    """No helper pods: a process where the target hosts one (or its refusal); helper pods: a pod."""
    from chaoslab.errors import TargetError
    from chaoslab.targets.helperpod import HelperPods, HelperPodSettings

    fault = build("webhook-outage", {"mode": "deny"}, duration=20)

    class NoHost(FakeTarget):
        def service_host(self) -> Any:
            raise TargetError("fake: the webhook server needs spec.target.helperPod")

    class WithPods(NoHost):
        def helper_pods(self) -> HelperPods:
            return HelperPods(self.api(), HelperPodSettings(namespace="chaoslab-x", python_image="py:3"))

    with pytest.raises(TargetError, match="helperPod"):
        fault.resolve(NoHost(), 0)
    params = fault.resolve(WithPods(), 0).undo[0].params
    assert (params["placement"], params["podNamespace"], params["image"]) == ("pod", "chaoslab-x", "py:3")
    assert params["address"] == f"chaoslab-webhook-{params['tag']}.chaoslab-x.svc"


def answer(status: int, message: str) -> requests.Response:
    """An apiserver's answer: a Status whose message is `message` (in JSON, so its quotes are escaped in the
    body), or `message` itself when it is a JSON body already (an admitted write's object)."""
    resp = requests.Response()
    resp.status_code = status
    body = message if message.startswith("{") else json.dumps({"kind": "Status", "status": "Failure",
                                                                "message": message, "code": status})
    resp._content = body.encode()
    return resp


DENIAL = 'admission webhook "w0-1.webhook-outage.chaoslab.io" denied the request: chaoslab webhook-outage: denied'


class InForceApi:
    """The dry-run CREATEs `await_in_force` sends: cp1 answers `answers` in turn (then the webhook's denial),
    cp2 the denial at once."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.session = self
        self.asked: list[str] = []

    def api(self) -> InForceApi:
        return self

    def apiserver_endpoints(self) -> dict[str, str]:
        return {"lb": "https://lb", "cp1": "https://cp1", "cp2": "https://cp2"}

    def post(self, url: str, **_: Any) -> Any:
        self.asked.append(url.split("/")[2])
        status, text = self.answers.pop(0) if url.startswith("https://cp1") and self.answers else (
            403, DENIAL)
        return answer(status, text)


def test_in_force_only_once_each_apiserver_has_seen_the_pods_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """'service "…" not found' is the apiserver not knowing the Service yet (its informer lags): a refusal,
    but not the fault's; that apiserver is asked again."""
    monkeypatch.setattr("time.sleep", lambda _: None)
    fault = build("webhook-outage", {"mode": "error500"})
    assert isinstance(fault, WebhookOutage)
    params = {"namespaces": ["chaoslab-webhook-test"], "tag": "w0-1", "placement": "pod"}
    missing = (500, ('Internal error occurred: failed calling webhook "w0-1.webhook-outage.chaoslab.io": Post '
                     '"https://chaoslab-webhook-w0-1.chaoslab-webhook-pods.svc:8443/error500": service '
                     '"chaoslab-webhook-w0-1" not found'))
    target = InForceApi([(201, "{}"), missing, missing])
    assert fault.await_in_force(target, params) is not None  # type: ignore[arg-type]
    assert target.asked == ["cp1", "cp1", "cp1", "cp1", "cp2"]
    # A server the target runs (no Service): any refusal is the webhook's.
    target = InForceApi([missing])
    fault.await_in_force(target, {**params, "placement": "process"})  # type: ignore[arg-type]
    assert target.asked == ["cp1", "cp2"]


class BehindOneEndpoint:
    """A kubeconfig's target: only `lb`, with two apiservers in `default/endpoints/kubernetes`; answers
    `answers` in turn, then `last`."""

    def __init__(self, answers: list[int], last: int) -> None:
        self.answers, self.last = answers, last
        self.session = self
        self.fresh: list[bool] = []

    def api(self) -> BehindOneEndpoint:
        return self

    def apiserver_endpoints(self) -> dict[str, str]:
        return {"lb": "https://lb"}

    def request(self, method: str, path: str) -> Any:
        assert (method, path) == ("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
        body = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}]}
        return type("Answer", (), {"status_code": 200, "json": lambda _: body})()

    def post(self, url: str, headers: dict[str, str] | None = None, **_: Any) -> Any:
        self.fresh.append(headers == {"Connection": "close"})
        status = self.answers.pop(0) if self.answers else self.last
        return answer(status, 'admission webhook "w" denied the request')


def test_behind_one_endpoint_in_force_takes_three_refusals_in_a_row_per_apiserver(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A load balancer picks an apiserver per connection: refusals in a row on fresh connections, three per
    apiserver but at least nine (LB_ANSWERS); an admitted write (an apiserver without the configuration
    yet) starts the count again."""
    monkeypatch.setattr("time.sleep", lambda _: None)
    fault = build("webhook-outage", {"mode": "deny"})
    assert isinstance(fault, WebhookOutage)
    target = BehindOneEndpoint([403, 403, 403, 201, 403], 403)
    assert fault.await_in_force(target, {"namespaces": ["t"], "tag": "w0-1"}) is not None  # type: ignore[arg-type]
    assert len(target.fresh) == 4 + 9 and all(target.fresh)


def test_the_undo_waits_until_no_apiserver_calls_the_webhook_before_it_stops_the_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping the server while an apiserver still has the configuration would refuse writes after the
    fault: no answer in time (a hang), a failed call naming the webhook, or the apiserver's own refusal
    (429, 5xx) is not yet lifted; an admitted write or an apiserver that cannot be reached at all is. An
    apiserver that still calls the webhook after IN_FORCE_TIMEOUT fails the undo."""
    from chaoslab.faults import webhook_outage

    calls: list[str] = []
    failed = (500, 'failed calling webhook "w0-1.webhook-outage.chaoslab.io"')
    answers = iter([(0, ""), failed, (429, "too many requests"), (503, ""), (201, "{}"), (-1, "")])

    class Api:
        session = property(lambda self: self)

        def delete(self, path: str) -> None:
            calls.append("delete configuration")

        def request(self, method: str, path: str) -> Any:
            return type("Answer", (), {"status_code": 404})

        def post(self, url: str, **_: Any) -> Any:
            status, text = next(answers, (201, "{}"))
            calls.append(f"ask {url.split('/')[2]}: {status}")
            if status == 0:
                raise requests.ReadTimeout("no answer")
            if status == -1:
                raise requests.ConnectionError("refused")
            return answer(status, text)

    class Target:
        def api(self) -> Api:
            return Api()

        def apiserver_endpoints(self) -> dict[str, str]:
            return {"lb": "https://lb", "cp1": "https://cp1", "cp2": "https://cp2"}

    monkeypatch.setattr("time.sleep", lambda _: None)
    monkeypatch.setattr(webhook_outage, "_stop_server", lambda *_: calls.append("stop server") or [])
    params = {"type": "validating", "name": "w", "marker": "m", "tag": "w0-1", "namespaces": [],
              "dir": "/nonexistent/chaoslab-w0-1"}
    remove_webhook(Target(), params, disarm=False)  # type: ignore[arg-type]
    assert calls == ["delete configuration", "ask cp1: 0", "ask cp1: 500", "ask cp1: 429", "ask cp1: 503",
                     "ask cp1: 201", "ask cp2: -1", "stop server"]
    answers = iter([failed] * 1000)
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr("time.monotonic", lambda: float(next(clock)))
    with pytest.raises(RevertError, match="the webhook's calls from https://cp1"):
        remove_webhook(Target(), params, disarm=False)  # type: ignore[arg-type]


def test_in_force_counts_only_the_webhooks_own_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """In mode deny, its denial (not a failed call, e.g. to a server the apiserver cannot reach yet); in the
    other modes, a failed call that names the webhook (not the apiserver's own 429)."""
    monkeypatch.setattr("time.sleep", lambda _: None)
    unreached = (500, 'failed calling webhook "w0-1.webhook-outage.chaoslab.io": no route to host')
    params = {"namespaces": ["t"], "tag": "w0-1"}
    deny = build("webhook-outage", {"mode": "deny"})
    assert isinstance(deny, WebhookOutage)
    target = InForceApi([unreached, unreached])
    deny.await_in_force(target, params)  # type: ignore[arg-type]
    assert target.asked == ["cp1", "cp1", "cp1", "cp2"]
    error500 = build("webhook-outage", {"mode": "error500"})
    assert isinstance(error500, WebhookOutage)
    target = InForceApi([(429, "too many requests"), unreached])
    error500.await_in_force(target, params)  # type: ignore[arg-type]
    assert target.asked == ["cp1", "cp1", "cp2"]
