"""A thin Kubernetes REST client over `requests`: JSON in, plain dicts out.

For hot paths (the simulated nodes in `chaoslab.lab.nodes`, probes) where the official client's model
deserialisation costs more than the request itself. The official client only resolves the kubeconfig.
Paths are absolute API paths; non-2xx answers raise `ApiError`; an unreachable server raises `TargetError`.
A bearer token that expires (a kubeconfig exec plugin's: EKS tokens last 15 minutes; a pod's projected
service-account token) is fetched again before it expires and whenever the apiserver answers 401
(`RefreshingToken`), so a game day outlives any one token.

    >>> api = KubeApi.from_kubeconfig(Path("kubeconfig"))
    >>> api.get("/api/v1/nodes", labelSelector="chaoslab.io/simulated=true")["items"]
    >>> api.patch("/api/v1/nodes/lab-node-1", {"spec": {"unschedulable": True}})
    >>> for event in api.watch("/api/v1/pods", resource_version=rv):
    ...     print(event["type"], event["object"]["metadata"]["name"])
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from chaoslab.errors import TargetError

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class ApiError(TargetError):
    """The apiserver answered a request with a non-2xx status.

    `reason` is the Status object's reason (`NotFound`, `AlreadyExists`, `Conflict` ...) when the body is
    one, else the HTTP reason phrase; `body` is the decoded JSON, else the text.
    """

    def __init__(self, method: str, path: str, status: int, reason: str, body: dict[str, Any] | str) -> None:
        self.method, self.path, self.status, self.reason, self.body = method, path, status, reason, body
        super().__init__(format_api_error(method, path, status, reason, body))

    @classmethod
    def from_response(cls, method: str, path: str, resp: requests.Response) -> ApiError:
        body: dict[str, Any] | str
        try:
            decoded = resp.json()
            body = decoded if isinstance(decoded, dict) else resp.text
        except ValueError:
            body = resp.text
        reason = body.get("reason") if isinstance(body, dict) else None
        return cls(method, path, resp.status_code, str(reason or resp.reason or ""), body)


def format_api_error(method: str, path: str, status: int, reason: str, body: dict[str, Any] | str) -> str:
    """`GET /api/v1/nodes: 403 Forbidden: <the Status message, or the start of the body>`."""
    detail = body.get("message", "") if isinstance(body, dict) else body.strip()
    head = f"{method} {path}: {status} {reason}".rstrip()
    text = f"{head}: {str(detail)[:300]}" if detail else head
    if status == 403:
        # The account lacks a permission: say where chaoslab's least-privilege roles are.
        text += " (grant it to chaoslab's account: see deploy/rbac/ for the roles each fault and probe needs)"
    return text


def query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Query parameters as the apiserver spells them: booleans `true`/`false`, None dropped."""
    out = {}
    for key, value in (params or {}).items():
        if value is not None:
            out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _why(exc: requests.RequestException) -> str:
    """The root cause of a failed connection, without urllib3's pool and URL preamble."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return re.sub(r"^\w+\(host=.*?\): ", "", str(reason or exc))


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where a pod finds its service-account token, CA and namespace."""


def _session(pool: int) -> requests.Session:
    session = requests.Session()
    # The environment's proxies would send lab traffic elsewhere, and looking them up costs per request.
    session.trust_env = False
    session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=pool))
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=pool))
    session.headers["Accept"] = "application/json"
    return session


@dataclass(frozen=True)
class Token:
    """A bearer token and when it stops being accepted (Unix time; None: not said)."""

    value: str
    expires: float | None = None


class RefreshingToken(AuthBase):
    """`requests` auth for a bearer token that expires: each request carries the current token, fetched
    again first when it expires within `margin` seconds; a 401 answer fetches a new one at once (unless
    another thread just did) and sends the request once more with it. One refresh at a time; share it
    across threads with the session.

        >>> session.auth = RefreshingToken(lambda: exec_token(user, cwd, cluster))
    """

    def __init__(self, fetch: Callable[[], Token], *, margin: float = 60.0,
                 clock: Callable[[], float] = time.time, token: Token | None = None) -> None:
        self.fetch = fetch
        """Returns a fresh token (runs the exec plugin, reads the token file); `TargetError` if it cannot."""
        self.margin = margin
        """Seconds before its expiry at which a token is replaced (default 60): a request that starts just
        before the deadline is not refused on the way."""
        self.clock = clock
        self._lock = threading.Lock()
        self._token = token or fetch()

    def token(self) -> str:
        """The token to send now: the current one, or a new one when it is about to expire."""
        with self._lock:
            expires = self._token.expires
            if expires is not None and self.clock() >= expires - self.margin:
                self._token = self.fetch()
            return self._token.value

    def _renew(self, rejected: str) -> str:
        """A new token after `rejected` drew a 401 — unless another thread has replaced it already."""
        with self._lock:
            if self._token.value == rejected:
                self._token = self.fetch()
            return self._token.value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        request.register_hook("response", self._on_401)  # type: ignore[no-untyped-call]
        return request

    def _on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401:
            return response
        sent = str(response.request.headers.get("Authorization", "")).removeprefix("Bearer ")
        fresh = self._renew(sent)
        if fresh == sent:
            return response  # the source has nothing newer: the 401 stands
        response.content  # noqa: B018 - read the body, so the connection can go back to the pool
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {fresh}"
        # Sent by the adapter directly: no auth and no hooks run again, so at most one retry.
        again: requests.Response = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again


def _rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 timestamp (`2026-12-02T07:15:00Z`)."""
    return datetime.fromisoformat(text).timestamp()


def exec_token(user_exec: Any, cwd: str | None, cluster: Any) -> Token:
    """Run a kubeconfig user's exec plugin (the official client's `ExecProvider`: environment,
    `KUBERNETES_EXEC_INFO`, apiVersion check) and return its token and `status.expirationTimestamp`."""
    from kubernetes.config.exec_provider import ExecProvider  # late: slow to import

    command = user_exec.safe_get("command") if hasattr(user_exec, "safe_get") else None
    try:
        status = ExecProvider(user_exec, cwd, cluster).run()  # type: ignore[no-untyped-call]
    except Exception as exc:  # ConfigException, OSError … from the plugin or its output
        raise TargetError(f"kubeconfig exec plugin {command!r}: no token ({exc}); does `{command}` work in "
                          f"this shell (credentials, PATH)?") from exc
    token = status.get("token") if isinstance(status, dict) else None
    if not isinstance(token, str) or not token:
        raise TargetError(f"kubeconfig exec plugin {command!r}: its answer has no status.token")
    expires = status.get("expirationTimestamp")
    try:
        return Token(token, _rfc3339(expires) if isinstance(expires, str) else None)
    except ValueError as exc:
        raise TargetError(f"kubeconfig exec plugin {command!r}: status.expirationTimestamp {expires!r} is not "
                          f"an RFC 3339 time") from exc


TOKEN_FILE_REREAD = 60.0
"""Seconds after which a mounted service-account token is read again (client-go: every minute too); the
kubelet rotates projected tokens well before they expire."""


def file_token(path: Path, clock: Callable[[], float] = time.time) -> Token:
    """The token in `path` (a pod's mounted service-account token), due to be read again in a minute."""
    try:
        return Token(path.read_text().strip(), clock() + TOKEN_FILE_REREAD)
    except OSError as exc:
        raise TargetError(f"cannot read the service-account token {path} ({exc})") from exc


def _exec_user(path: Path | None, context: str | None) -> Callable[[], Token] | None:
    """How to fetch a token again for the kubeconfig user of `context`: its exec plugin, when it has one
    and nothing the official loader tries first (auth-provider, token, tokenFile)."""
    from kubernetes.config.kube_config import KubeConfigMerger

    files = str(path) if path else os.environ.get("KUBECONFIG", "~/.kube/config")
    merged = KubeConfigMerger(files).config  # type: ignore[no-untyped-call]
    ctx = merged["contexts"].get_with_name(context or merged["current-context"])["context"]
    named = merged["users"].get_with_name(ctx["user"], safe=True) if ctx.safe_get("user") and merged.safe_get(
        "users") else None
    user = named["user"] if named else None
    if user is None or "exec" not in user or any(k in user for k in ("auth-provider", "token", "tokenFile")):
        return None
    cluster = merged["clusters"].get_with_name(ctx["cluster"])["cluster"]
    cwd = os.path.abspath(os.path.dirname(cluster.path)) if cluster.path else None
    return lambda: exec_token(user["exec"], cwd, cluster)


def get_or_none(api: Any, path: str) -> dict[str, Any] | None:
    """GET `path` through `api` (a `KubeApi`); None when the object is not there (404)."""
    try:
        found: dict[str, Any] = api.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


class KubeApi:
    """One apiserver endpoint and a pooled, thread-safe-enough `requests.Session` (share it across threads)."""

    def __init__(self, server: str, session: requests.Session, timeout: float = 10.0) -> None:
        self.server = server.rstrip("/")
        self.session = session
        self.timeout = timeout
        """Seconds to wait for an answer when a call does not say."""

    @classmethod
    def from_kubeconfig(cls, path: Path | None, context: str | None = None, *, pool: int = 16,
                        timeout: float = 10.0) -> KubeApi:
        """Resolve server, CA, client certificate and token from a kubeconfig (inline data included);
        `path` None: `$KUBECONFIG`, else ~/.kube/config."""
        from kubernetes import client, config  # imported late: it is slow to import and only resolves files

        conf = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                str(path) if path else None, context=context, client_configuration=conf, persist_config=False)
        except Exception as exc:  # the loader raises ConfigException, KeyError, OSError ... for bad files
            raise TargetError(f"kubeconfig {path}: cannot be loaded ({exc}); check the file and context") from exc
        session = _session(pool)
        session.verify = (conf.ssl_ca_cert or True) if conf.verify_ssl else False
        if conf.cert_file and conf.key_file:
            session.cert = (conf.cert_file, conf.key_file)
        if conf.proxy:
            session.proxies = {"https": conf.proxy, "http": conf.proxy}
        try:
            fetch = _exec_user(path, context)
        except Exception as exc:  # the loader accepted the file: this cannot fail short of a race
            raise TargetError(f"kubeconfig {path}: cannot be loaded ({exc}); check the file and context") from exc
        token = conf.api_key.get("BearerToken")  # already carries its scheme: "Bearer ..." or "Basic ..."
        if fetch is not None and token:
            # An exec plugin's token: the loader ran the plugin once; its expiry is only in our own run.
            session.auth = RefreshingToken(fetch)
        elif token:
            session.headers["Authorization"] = token
        return cls(conf.host, session, timeout)

    @classmethod
    def in_cluster(cls, root: Path = SERVICE_ACCOUNT_DIR, *, environ: Mapping[str, str] | None = None,
                   pool: int = 16, timeout: float = 10.0) -> KubeApi:
        """The API as a pod sees it: `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted service-account token
        and CA under `root` (/var/run/secrets/kubernetes.io/serviceaccount)."""
        import os

        env = os.environ if environ is None else environ
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise TargetError("in-cluster target: KUBERNETES_SERVICE_HOST is not set, so this is not a pod; "
                              "use --target kubeconfig[:CONTEXT] outside a cluster")
        try:
            token = file_token(root / "token")
        except TargetError as exc:
            raise TargetError(f"in-cluster target: {exc}; is automountServiceAccountToken disabled for this "
                              f"pod?") from exc
        session = _session(pool)
        ca = root / "ca.crt"
        session.verify = str(ca) if ca.exists() else True
        # Projected tokens rotate (an hour by default): read the file again each minute and on a 401.
        session.auth = RefreshingToken(lambda: file_token(root / "token"), margin=0.0, token=token)
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        return cls(server, session, timeout)

    def with_pool(self, pool: int, timeout: float | None = None) -> KubeApi:
        """Another client for the same server and credentials with a connection pool of its own, `pool`
        connections (probes and load generators that keep many requests in flight at once)."""
        session = _session(pool)
        session.verify, session.cert, session.proxies = self.session.verify, self.session.cert, self.session.proxies
        session.headers.update(self.session.headers)
        return KubeApi(self.server, session, timeout or self.timeout)

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                content_type: str = "application/json", timeout: float | None = None,
                stream: bool = False) -> requests.Response:
        """Send one request and return the response whatever its status; raise only if none came."""
        data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            return self.session.request(method, self.server + path, params=query(params), data=data,
                                        headers=headers, timeout=timeout or self.timeout, stream=stream)
        except requests.RequestException as exc:
            raise TargetError(f"{method} {path}: no answer from {self.server} ({_why(exc)})") from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.request(method, path, **kwargs)
        if not 200 <= resp.status_code < 300:
            raise ApiError.from_response(method, path, resp)
        out: dict[str, Any] = resp.json()
        return out

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, body=body)

    def replace(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("PUT", path, body=body)

    def patch(self, path: str, body: Any, *, patch_type: str = "merge") -> dict[str, Any]:
        """`patch_type` is merge (RFC 7386), strategic (Kubernetes' own) or json (RFC 6902, a list of ops)."""
        return self._call("PATCH", path, body=body, content_type=PATCH_TYPES[patch_type])

    def delete(self, path: str, body: Mapping[str, Any] | None = None, **params: Any) -> dict[str, Any] | None:
        """Delete; None when it was already gone (404)."""
        try:
            return self._call("DELETE", path, body=body, params=params)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def watch(self, path: str, *, resource_version: str | None = None, timeout_seconds: int = 300,
              silence: float | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Yield watch events `{"type", "object"}` until the server ends the watch.

        BOOKMARK and ERROR events are yielded too: an ERROR's object is a Status, and code 410 means the
        resource version is too old, so the caller relists. `silence`: seconds without a byte after which
        the watch counts as broken (`TargetError`); default `timeout_seconds + 30`. A connection whose
        packets are dropped (a partition between client and apiserver) neither ends nor errors: only
        silence tells.
        """
        params |= {"watch": True, "allowWatchBookmarks": True, "timeoutSeconds": timeout_seconds,
                   "resourceVersion": resource_version}
        # The read timeout must outlast a quiet watch: the server ends it after timeoutSeconds anyway.
        read_timeout = silence if silence is not None else timeout_seconds + 30
        with self.request("GET", path, params=params, timeout=read_timeout, stream=True) as resp:
            if resp.status_code != 200:
                raise ApiError.from_response("GET", path, resp)
            pending = b""
            try:
                # chunk_size=None hands over each chunk as it arrives; the server flushes one per event.
                for chunk in resp.iter_content(chunk_size=None):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
            except requests.RequestException as exc:
                raise TargetError(f"GET {path}: watch broke off ({exc})") from exc
