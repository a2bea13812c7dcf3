"""A bearer token that expires mid-game-day is replaced: a kubeconfig exec plugin (EKS: 15-minute tokens)
is run again shortly before its `status.expirationTimestamp` and whenever the apiserver answers 401, and
the refused request is sent once more; a rotated service-account token file is read again.

No cluster: a fake exec plugin (a script this test writes) issues `tok-1`, `tok-2` … and a tiny HTTP server
on loopback accepts only the newest token issued, answering 401 to any older one, as an apiserver does to
an expired token."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from chaoslab.clients.kubeapi import ApiError, KubeApi, RefreshingToken
from chaoslab.errors import TargetError

PLUGIN = """\
#!{python}
import json, os, pathlib, sys, time
state = pathlib.Path(os.environ["FAKE_PLUGIN_STATE"])
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
if (state / "fail").exists():
    print("token expired: run `aws sso login`", file=sys.stderr)
    sys.exit(1)
n = len(list(state.glob("issued-*"))) + 1
(state / f"issued-{{n}}").write_text("")
lifetime = float((state / "lifetime").read_text())
expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lifetime))
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {{"token": f"tok-{{n}}", "expirationTimestamp": expires}}}}))
"""


@dataclass
class Apiserver:
    """Accepts the newest token issued (or `accept`, when set), 401 for any other; logs (token, status)."""

    state: Path
    url: str = ""
    accept: str | None = None
    reject_all: bool = False
    log: list[tuple[str, int]] = field(default_factory=list)

    def newest(self) -> str:
        return f"tok-{len(list(self.state.glob('issued-*')))}"


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[Apiserver]:
    state = tmp_path / "state"
    state.mkdir()
    (state / "lifetime").write_text("900")  # EKS: 15 minutes
    fake = Apiserver(state)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            good = not fake.reject_all and token == (fake.accept or fake.newest())
            fake.log.append((token, 200 if good else 401))
            body = ({"kind": "APIVersions", "versions": ["v1"]} if good else
                    {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401,
                     "message": "Unauthorized"})
            data = json.dumps(body).encode()
            self.send_response(200 if good else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def kubeconfig(tmp_path: Path, apiserver: Apiserver) -> Path:
    plugin = tmp_path / "fake-get-token"
    plugin.write_text(PLUGIN.format(python=sys.executable))
    plugin.chmod(0o755)
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "eks",
        "clusters": [{"name": "eks", "cluster": {"server": apiserver.url}}],
        "users": [{"name": "eks-user", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin),
            "args": ["eks", "get-token"], "env": [{"name": "FAKE_PLUGIN_STATE", "value": str(apiserver.state)}],
            "interactiveMode": "Never"}}}],
        "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks-user"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def issued(apiserver: Apiserver) -> int:
    return len(list(apiserver.state.glob("issued-*")))


def refresher(api: KubeApi) -> RefreshingToken:
    assert isinstance(api.session.auth, RefreshingToken)
    return api.session.auth


def test_an_expired_exec_token_is_replaced_on_401_and_the_request_sent_again(tmp_path: Path,
                                                                            apiserver: Apiserver) -> None:
    api = KubeApi.from_kubeconfig(kubeconfig(tmp_path, apiserver))
    assert api.get("/api")["versions"] == ["v1"]
    before = issued(apiserver)
    (apiserver.state / f"issued-{before + 1}").write_text("")  # the apiserver no longer takes ours
    apiserver.log.clear()
    assert api.get("/api")["versions"] == ["v1"]
    assert apiserver.log == [(f"tok-{before}", 401), (f"tok-{before + 2}", 200)]
    assert issued(apiserver) == before + 2  # the plugin ran once for the 401
    # and the new token serves the next requests without another run
    api.get("/api")
    assert apiserver.log[-1] == (f"tok-{before + 2}", 200) and issued(apiserver) == before + 2


def test_an_exec_token_is_replaced_before_it_expires_without_a_401(tmp_path: Path, apiserver: Apiserver) -> None:
    api = KubeApi.from_kubeconfig(kubeconfig(tmp_path, apiserver))
    auth = refresher(api)
    now = auth.clock()
    api.get("/api")
    before = issued(apiserver)
    auth.clock = lambda: now + 900 - auth.margin - 5  # not yet due: the same token
    api.get("/api")
    assert issued(apiserver) == before
    auth.clock = lambda: now + 900 - auth.margin + 5  # within the margin of its expirationTimestamp
    apiserver.log.clear()
    api.get("/api")
    assert issued(apiserver) == before + 1
    assert apiserver.log == [(f"tok-{before + 1}", 200)]  # the new token went first: no 401 on the way


def test_a_401_that_a_new_token_does_not_cure_is_an_api_error_after_one_retry(tmp_path: Path,
                                                                             apiserver: Apiserver) -> None:
    api = KubeApi.from_kubeconfig(kubeconfig(tmp_path, apiserver))
    before = issued(apiserver)
    apiserver.reject_all = True
    with pytest.raises(ApiError) as err:
        api.get("/api")
    assert err.value.status == 401
    assert [status for _, status in apiserver.log] == [401, 401] and issued(apiserver) == before + 1


def test_a_plugin_that_cannot_give_a_token_is_a_target_error_naming_it(tmp_path: Path,
                                                                      apiserver: Apiserver) -> None:
    api = KubeApi.from_kubeconfig(kubeconfig(tmp_path, apiserver))
    (apiserver.state / "fail").write_text("")
    apiserver.reject_all = True
    with pytest.raises(TargetError, match=r"exec plugin '.*fake-get-token': no token .*aws sso login"):
        api.get("/api")


def test_a_static_token_is_sent_as_is(tmp_path: Path, apiserver: Apiserver) -> None:
    config = yaml.safe_load(kubeconfig(tmp_path, apiserver).read_text())
    config["users"][0]["user"] = {"token": "static"}
    path = tmp_path / "static"
    path.write_text(yaml.safe_dump(config))
    api = KubeApi.from_kubeconfig(path)
    assert api.session.auth is None and api.session.headers["Authorization"] == "Bearer static"
    assert issued(apiserver) == 0


def test_a_rotated_service_account_token_is_read_again_on_401(tmp_path: Path, apiserver: Apiserver) -> None:
    (tmp_path / "token").write_text("sa-1\n")
    apiserver.accept = "sa-1"
    api = KubeApi.in_cluster(tmp_path, environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                                "KUBERNETES_SERVICE_PORT": "1"})
    api.server = apiserver.url
    api.get("/api")
    (tmp_path / "token").write_text("sa-2\n")  # the kubelet rotated the projected token
    apiserver.accept = "sa-2"
    api.get("/api")
    assert apiserver.log == [("sa-1", 200), ("sa-1", 401), ("sa-2", 200)]
