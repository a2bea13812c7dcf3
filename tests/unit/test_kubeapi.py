"""Unit tests for chaoslab.clients.kubeapi: error messages, query encoding, kubeconfig resolution, watch framing.

No network: a fake session answers, and kubeconfigs carry dummy inline data.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from chaoslab.clients.kubeapi import ApiError, KubeApi, format_api_error, query
from chaoslab.errors import TargetError


def _response(status: int, body: bytes | list[bytes], reason: str = "") -> requests.Response:
    chunks = body if isinstance(body, list) else [body]

    class Raw:
        def stream(self, amt: int | None, decode_content: bool = True) -> Iterator[bytes]:
            yield from chunks

        def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
            return b"".join(chunks)

        def close(self) -> None:
            pass

    resp = requests.Response()
    resp.status_code, resp.reason, resp.raw = status, reason, Raw()
    return resp


class FakeSession(requests.Session):
    """Answers every request with the next queued response and remembers what was asked."""

    def __init__(self, *answers: requests.Response) -> None:
        super().__init__()
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def request(self, method: Any, url: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append({"method": method, "url": url, **kwargs})
        return self.answers.pop(0)


def _status(code: int, reason: str, message: str) -> bytes:
    return json.dumps({"kind": "Status", "code": code, "reason": reason, "message": message}).encode()


def test_api_error_message_names_method_path_status_and_message() -> None:
    body = {"kind": "Status", "reason": "Forbidden", "message": 'nodes is forbidden: User "x" cannot list'}
    err = ApiError("GET", "/api/v1/nodes", 403, "Forbidden", body)
    assert str(err).startswith('GET /api/v1/nodes: 403 Forbidden: nodes is forbidden: User "x" cannot list')
    assert str(err).endswith("see deploy/rbac/ for the roles each fault and probe needs)")
    assert isinstance(err, TargetError) and err.status == 403 and err.body == body


def test_api_error_message_from_a_text_body_is_cut_short() -> None:
    text = format_api_error("POST", "/api/v1/pods", 502, "Bad Gateway", "  <html>" + "x" * 1000)
    assert text.startswith("POST /api/v1/pods: 502 Bad Gateway: <html>xxx") and len(text) < 360
    assert format_api_error("GET", "/x", 500, "", "") == "GET /x: 500"


def test_api_error_takes_the_status_reason_over_the_http_phrase() -> None:
    resp = _response(409, _status(409, "AlreadyExists", 'nodes "n1" already exists'), reason="Conflict")
    err = ApiError.from_response("POST", "/api/v1/nodes", resp)
    assert (err.status, err.reason) == (409, "AlreadyExists")
    assert str(err) == 'POST /api/v1/nodes: 409 AlreadyExists: nodes "n1" already exists'
    plain = ApiError.from_response("GET", "/x", _response(503, b"unavailable", reason="Service Unavailable"))
    assert (plain.reason, plain.body) == ("Service Unavailable", "unavailable")


def test_query_spells_booleans_as_the_apiserver_does_and_drops_none() -> None:
    assert query({"watch": True, "pretty": False, "resourceVersion": None, "limit": 5}) == {
        "watch": "true", "pretty": "false", "limit": "5"}
    assert query(None) == {}


def test_patch_sends_json_with_the_patch_content_type() -> None:
    session = FakeSession(_response(200, b'{"kind": "Node"}'))
    api = KubeApi("https://127.0.0.1:6443/", session)
    assert api.patch("/api/v1/nodes/n1/status", {"status": {}}, patch_type="strategic") == {"kind": "Node"}
    call = session.calls[0]
    assert call["url"] == "https://127.0.0.1:6443/api/v1/nodes/n1/status" and call["method"] == "PATCH"
    assert call["headers"] == {"Content-Type": "application/strategic-merge-patch+json"}
    assert json.loads(call["data"]) == {"status": {}}


def test_get_raises_api_error_and_delete_of_a_missing_object_returns_none() -> None:
    api = KubeApi("https://k", FakeSession(_response(403, _status(403, "Forbidden", "no")),
                                          _response(404, _status(404, "NotFound", "gone"))))
    with pytest.raises(ApiError, match="GET /api/v1/nodes: 403 Forbidden: no"):
        api.get("/api/v1/nodes")
    assert api.delete("/api/v1/nodes/n1") is None


def test_an_unreachable_server_is_a_target_error() -> None:
    class Refusing(requests.Session):
        def request(self, method: Any, url: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            raise requests.ConnectionError("connection refused")

    with pytest.raises(TargetError, match="GET /readyz: no answer from https://k"):
        KubeApi("https://k", Refusing()).request("GET", "/readyz")


def test_watch_yields_events_split_across_chunks_and_asks_for_bookmarks() -> None:
    events = [{"type": "ADDED", "object": {"metadata": {"name": f"p{i}"}}} for i in range(3)]
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    chunks = [stream[:7], stream[7:50], stream[50:51], stream[51:]]
    session = FakeSession(_response(200, chunks))
    got = list(KubeApi("https://k", session).watch("/api/v1/pods", resource_version="42", fieldSelector="a=b"))
    assert got == events
    params = session.calls[0]["params"]
    assert params == {"fieldSelector": "a=b", "watch": "true", "allowWatchBookmarks": "true",
                      "timeoutSeconds": "300", "resourceVersion": "42"}
    assert session.calls[0]["stream"] is True and session.calls[0]["timeout"] > 300


def test_a_watch_asked_to_notice_silence_reads_with_that_timeout() -> None:
    session = FakeSession(_response(200, [b""]))
    list(KubeApi("https://k", session).watch("/x", timeout_seconds=5, silence=7.0))
    assert session.calls[0]["timeout"] == 7.0 and session.calls[0]["params"]["timeoutSeconds"] == "5"


def test_watch_refused_raises_api_error() -> None:
    api = KubeApi("https://k", FakeSession(_response(403, _status(403, "Forbidden", "no"))))
    with pytest.raises(ApiError):
        list(api.watch("/api/v1/pods"))


def test_from_kubeconfig_resolves_inline_certificates_and_token(tmp_path: Path) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:16443",
                                                 "certificate-authority-data": b64("CA")}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": b64("CERT"),
                                             "client-key-data": b64("KEY"), "token": "s3cret"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    api = KubeApi.from_kubeconfig(path, pool=4)
    assert api.server == "https://127.0.0.1:16443"
    assert isinstance(api.session.verify, str) and Path(api.session.verify).read_text() == "CA"
    assert isinstance(api.session.cert, tuple)
    assert [Path(p).read_text() for p in api.session.cert] == ["CERT", "KEY"]
    assert api.session.headers["Authorization"] == "Bearer s3cret"
    assert api.session.get_adapter("https://127.0.0.1:16443")._pool_maxsize == 4  # type: ignore[attr-defined]


def test_from_kubeconfig_names_the_file_when_it_cannot_load(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="kubeconfig .*missing"):
        KubeApi.from_kubeconfig(tmp_path / "missing")


def test_a_refused_connection_is_reported_without_urllib3_preamble() -> None:
    class Pooled(Exception):
        reason = "HTTPSConnection(host='127.0.0.1', port=1): Failed to establish a new connection: refused"

    class Refusing(requests.Session):
        def request(self, method: Any, url: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            raise requests.ConnectionError(Pooled())

    with pytest.raises(TargetError) as info:
        KubeApi("https://k", Refusing()).request("GET", "/readyz")
    assert str(info.value) == "GET /readyz: no answer from https://k (Failed to establish a new connection: refused)"
