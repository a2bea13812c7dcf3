"""`webhook-outage`: an admission webhook that hangs, fails, denies, serves a bad certificate or cannot be
reached, registered for the resources an experiment names, so the apiserver's own admission chain blocks
(failurePolicy Fail) or slows (Ignore, up to timeoutSeconds) every write it matches.

How: chaoslab runs its own webhook server (`chaoslab.faults.webhook_server`) with a CA and serving
certificate made for this injection, where every apiserver reaches it, and creates a
ValidatingWebhookConfiguration (or Mutating) that points at it:

- where the target hosts chaoslab's processes (`Target.service_host`: on the lab, the lab network's switch
  namespace on the bridge's service address), as a detached process, named by `clientConfig.url`;
- on a kubeconfig target with helper pods allowed (`Target.helper_pods`, the consent `spec.target.helperPod`
  gives), as a pod and a Service in the helper namespace (`chaoslab.faults.webhook_pod`), named by
  `clientConfig.service`, so the apiservers reach it the way they reach any webhook.

- `mode`: `hang` (no answer for longer than `timeoutSeconds`), `error500`, `deny`, `bad-cert` (`badCert`:
  `expired` certificate, or `wrong-ca`: signed by a CA the caBundle does not hold), `unreachable`
  (nothing listens at the URL: connection refused), or `allow` (a healthy webhook: the added latency alone);
- `resources` (`configmaps`, `leases.coordination.k8s.io`, `nodes/status`, `*`; a name without a group
  matches it in every group), `operations` (CREATE, UPDATE, DELETE, CONNECT or `*`), `namespaces` (default
  the test namespace `chaoslab-webhook-test`, created when missing; `*` for all). Named namespaces are
  labelled `chaoslab.io/webhook-outage=<tag>` for the configuration's namespaceSelector (Kubernetes 1.20
  has no automatic name label) and unlabelled by the undo. Cluster-scoped resources (nodes, namespaces)
  match whatever the namespaces say, as the apiserver ignores namespaceSelector for them;
- `failurePolicy` Fail or Ignore, `timeoutSeconds` 1-30 (the apiserver's bound on each call).

Blast radius: matching kube-system, kube-node-lease, kube-public or `*` namespaces, or Leases, Nodes,
Namespaces or `*` resources, can stop the control plane's own writes (leader election, node heartbeats).
The guard rails refuse it unless the experiment says `spec.blastRadius.allowControlPlaneWebhooks: true`
(`control_plane_matches`). Webhook configurations themselves are never sent to webhooks, so the undo
always gets through.

Undo (`delete-webhook`, written before anything is created): delete the configuration, disarm the
dead-man's switch, stop the server, remove the namespace labels and the certificate directory, then check
that the configuration is gone. The switch (`chaoslab.faults.netrules.dead_mans_switch`, armed before the
configuration is created) runs the same undo at `duration + deadman` if chaoslab was SIGKILLed:
`python -m chaoslab.faults.webhook_outage --heal FILE`, FILE holding the target's description and the undo;
the server also exits by itself at that deadline. `chaoslab recover` replays the undo.

Timeline events: ``webhook`` (``name``, ``type``, ``mode``, ``url``, ``failurePolicy``,
``timeoutSeconds``, ``rules``, ``namespaces``) once the configuration exists.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chaoslab.clients.hosts import Command, wrap
from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import ChaoslabError, InjectionError, RevertError
from chaoslab.faults import webhook_pod
from chaoslab.faults.base import FaultParams, Injection, Record, SwitchedFault, Undo, ignore_events
from chaoslab.faults.netrules import cancel_dead_mans_switch, dead_mans_switch
from chaoslab.faults.webhook_server import process_pattern
from chaoslab.targets import Target

MODES = ("hang", "error500", "deny", "bad-cert", "unreachable", "allow")
TEST_NAMESPACE = "chaoslab-webhook-test"
IN_FORCE_TIMEOUT = 30.0
"""Seconds every apiserver may take to call a new webhook before the injection counts as failed."""
LABEL = "chaoslab.io/webhook-outage"
HEAL_MARGIN = 60
GROUP = "/apis/admissionregistration.k8s.io/v1"
CONTROL_PLANE_NAMESPACES = ("*", "kube-system", "kube-node-lease", "kube-public")
CONTROL_PLANE_RESOURCES = ("*", "leases", "nodes", "namespaces")
"""Resources whose writes the control plane itself depends on (Leases: leader election and node heartbeats;
Nodes: status; Namespaces: cluster-scoped, so matched in every namespace), or all of them."""
HANG_MARGIN = 5.0
"""A hanging webhook holds each request this much longer than timeoutSeconds (seconds)."""
SERVER_OUTLIVES = int(IN_FORCE_TIMEOUT) + 10
"""Seconds the server outlives the dead-man's deadline: the switch's heal deletes the configuration, then
waits (at most IN_FORCE_TIMEOUT) for the apiservers to stop calling the webhook before it stops the server."""


@dataclass(frozen=True)
class WebhookOutageParams(FaultParams):
    mode: str = "hang"
    """hang, error500, deny, bad-cert, unreachable or allow (default hang)."""
    type: str = "validating"
    """validating or mutating: which configuration is registered (default validating)."""
    failurePolicy: str = "Fail"  # camelCase fields: the YAML spelling, as build() passes them
    """Fail (a failed call refuses the request) or Ignore (it lets it through), default Fail."""
    timeoutSeconds: int = 10
    """Seconds the apiserver waits for each call, 1-30 (default 10, as Kubernetes')."""
    resources: Sequence[str] = ("configmaps",)
    """Resources matched: NAME (every API group), NAME.GROUP, NAME/SUBRESOURCE or `*` (default configmaps)."""
    operations: Sequence[str] = ("CREATE", "UPDATE")
    """Operations matched: CREATE, UPDATE, DELETE, CONNECT or `*` (default CREATE and UPDATE)."""
    namespaces: Sequence[str] = (TEST_NAMESPACE,)
    """Namespaces matched, or `*` for all (default chaoslab-webhook-test)."""
    badCert: str = "expired"
    """mode bad-cert: `expired` (a certificate past its notAfter) or `wrong-ca` (signed by another CA)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the dead-man's switch deletes the configuration if chaoslab did
    not (default 60)."""

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.mode not in MODES:
            out.append(("mode", f"{self.mode!r} is not one of {', '.join(MODES)}"))
        if self.type not in ("validating", "mutating"):
            out.append(("type", f"{self.type!r} is not one of validating, mutating"))
        if self.failurePolicy not in ("Fail", "Ignore"):
            out.append(("failurePolicy", f"{self.failurePolicy!r} is not one of Fail, Ignore"))
        if isinstance(self.timeoutSeconds, bool) or not isinstance(self.timeoutSeconds, int) \
                or not 1 <= self.timeoutSeconds <= 30:
            out.append(("timeoutSeconds", f"{self.timeoutSeconds!r}: give whole seconds from 1 to 30"))
        if not self.resources or any(not isinstance(r, str) or not r for r in self.resources):
            out.append(("resources", "name at least one resource, e.g. configmaps"))
        bad = [o for o in self.operations if o not in ("CREATE", "UPDATE", "DELETE", "CONNECT", "*")]
        if not self.operations or bad:
            out.append(("operations", f"{bad or 'none'}: give CREATE, UPDATE, DELETE, CONNECT or *"))
        if not self.namespaces or ("*" in self.namespaces and len(self.namespaces) > 1):
            out.append(("namespaces", "name the namespaces, or `*` alone for all"))
        if self.badCert not in ("expired", "wrong-ca"):
            out.append(("badCert", f"{self.badCert!r} is not one of expired, wrong-ca"))
        if isinstance(self.deadman, bool) or not isinstance(self.deadman, int) or self.deadman < 1:
            out.append(("deadman", f"{self.deadman!r}: give whole seconds, at least 1"))
        return out

    def rules(self) -> list[dict[str, Any]]:
        """The configuration's rules: one per API group named (`*` for bare names)."""
        by_group: dict[str, list[str]] = {}
        for r in self.resources:
            name, _, sub = r.partition("/")
            base, _, group = name.partition(".")
            resource = base + (f"/{sub}" if sub else "")
            by_group.setdefault("*" if r in ("*", "*/*") or not group else group, []).append(
                "*" if r == "*" else resource)
        if "*" in self.resources:
            by_group = {"*": ["*"]}
        return [{"apiGroups": [g], "apiVersions": ["*"], "operations": list(self.operations),
                 "resources": sorted(set(rs)), "scope": "*"} for g, rs in sorted(by_group.items())]


def control_plane_matches(targets: Sequence[str]) -> list[str]:
    """The injection targets (`webhook@NAMESPACE/RESOURCE`) that can block the control plane's own writes.

        >>> control_plane_matches(["webhook@chaoslab-webhook-test/configmaps", "webhook@*/configmaps",
        ...                        "webhook@default/leases.coordination.k8s.io"])
        ['webhook@*/configmaps', 'webhook@default/leases.coordination.k8s.io']
    """
    out = []
    for t in targets:
        what, _, rest = t.partition("@")
        if what != "webhook":
            continue
        namespace, _, resource = rest.partition("/")
        base = resource.split("/")[0].split(".")[0]
        if namespace in CONTROL_PLANE_NAMESPACES or base in CONTROL_PLANE_RESOURCES:
            out.append(t)
    return out


def configuration_path(kind: str, name: str = "") -> str:
    plural = "validatingwebhookconfigurations" if kind == "validating" else "mutatingwebhookconfigurations"
    return f"{GROUP}/{plural}" + (f"/{name}" if name else "")


# ---- certificates --------------------------------------------------------------------------------------


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ca(cn: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_certificates(directory: Path, address: str, bad: str | None = None) -> bytes:
    """Write `server.crt`/`server.key` for `address` (an IP address, or the DNS name of a Service) into
    `directory` and return the PEM CA bundle the configuration must trust. `bad`: `expired` (the
    certificate ended an hour ago) or `wrong-ca` (signed by a second CA the bundle does not hold)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = _ca(f"chaoslab-webhook-{directory.name}", now)
    signer_key, signer = _ca(f"chaoslab-webhook-other-{directory.name}", now) if bad == "wrong-ca" else (ca_key, ca_cert)
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = ((now - dt.timedelta(days=2), now - dt.timedelta(hours=1)) if bad == "expired"
                  else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=1)))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chaoslab-webhook")]))
            .issuer_name(signer.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([_subject(address)]), critical=False)
            .sign(signer_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "server.key").write_bytes(_key_pem(key))
    (directory / "server.key").chmod(0o600)
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    bundle = ca_cert.public_bytes(serialization.Encoding.PEM)
    (directory / "ca.crt").write_bytes(bundle)
    return bundle


def _subject(address: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(address))
    except ValueError:
        return x509.DNSName(address)


# ---- the fault -----------------------------------------------------------------------------------------


class WebhookOutage(SwitchedFault[WebhookOutageParams]):
    kind: ClassVar[str] = "webhook-outage"
    params_type: ClassVar[type] = WebhookOutageParams
    level: ClassVar[str] = "api"
    """Acts through the Kubernetes API (plus a server the target hosts where its apiservers reach it)."""

    def server_lifetime(self) -> int:
        """Seconds after injection at which the server ends by itself (SERVER_OUTLIVES past the deadline)."""
        return self.deadline() + SERVER_OUTLIVES

    def resolve(self, target: Target, index: int) -> Injection:
        p = self.params
        pods = target.helper_pods()
        if pods is None:
            _, address = target.service_host()  # refuses targets that cannot host the server
        api = target.api()
        named = [] if "*" in p.namespaces else list(p.namespaces)
        missing = [ns for ns in named if not ns.startswith("chaoslab-") and not _exists(api, ns)]
        if missing:
            raise InjectionError(f"webhook-outage: namespace(s) {', '.join(missing)} do not exist; create them or "
                                 f"name others (only chaoslab-* namespaces are created)")
        tag = f"w{index}-{uuid.uuid4().hex[:8]}"
        params: dict[str, Any] = {"type": p.type, "name": f"chaoslab-webhook-outage-{tag}", "marker": f"chaoslab-{tag}",
                  "namespaces": named, "label": LABEL, "tag": tag,
                  "dir": str(Path(tempfile.gettempdir()) / "chaoslab-webhook" / tag)}
        if pods is None:
            params.update(placement="process", address=address, port=20000 + int(tag[-8:], 16) % 20000)
        else:
            ns = pods.settings.namespace
            params.update(placement="pod", podNamespace=ns, image=pods.settings.python_image,
                          address=webhook_pod.dns_name(tag, ns), port=webhook_pod.PORT,
                          startTimeout=pods.settings.start_timeout)
        targets = tuple(f"webhook@{ns}/{r}" for ns in p.namespaces for r in p.resources)
        return Injection(self.kind, index, "admission", p.mode, targets, (Undo("delete-webhook", params),))

    def url(self, params: Mapping[str, Any]) -> str:
        return f"https://{params['address']}:{params['port']}/{self.params.mode}"

    def configuration(self, params: Mapping[str, Any], ca_bundle: bytes) -> dict[str, Any]:
        """The Validating/MutatingWebhookConfiguration as it will be created."""
        p = self.params
        client: dict[str, Any] = ({"url": self.url(params)} if not _on_pod(params) else
                                  {"service": webhook_pod.service_reference(params["tag"], params["podNamespace"],
                                                                            p.mode)})
        hook: dict[str, Any] = {
            "name": webhook_name(params),
            "clientConfig": {**client, "caBundle": base64.b64encode(ca_bundle).decode()},
            "rules": p.rules(), "failurePolicy": p.failurePolicy, "timeoutSeconds": p.timeoutSeconds,
            "sideEffects": "None", "admissionReviewVersions": ["v1", "v1beta1"], "matchPolicy": "Equivalent",
        }
        if params["namespaces"]:
            hook["namespaceSelector"] = {"matchLabels": {LABEL: params["tag"]}}
        if p.type == "mutating":
            hook["reinvocationPolicy"] = "Never"
        kind = "ValidatingWebhookConfiguration" if p.type == "validating" else "MutatingWebhookConfiguration"
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                "metadata": {"name": params["name"], "labels": {LABEL: params["tag"]}}, "webhooks": [hook]}

    def server_command(self, target: Target, params: Mapping[str, Any], until: int) -> Command:
        """The detached webhook server, wrapped to run where the target hosts it (None in mode unreachable)."""
        how, _ = target.service_host()
        d = Path(params["dir"])
        argv = (sys.executable, "-m", "chaoslab.faults.webhook_server", "--mode", self.params.mode,
                "--hang", f"{self.params.timeoutSeconds + HANG_MARGIN:g}", "--address", params["address"],
                "--port", str(params["port"]), "--cert", str(d / "server.crt"), "--key", str(d / "server.key"),
                "--log", str(d / "requests.jsonl"), "--until", str(until), "--detach", "--marker", params["marker"])
        return wrap([Command(argv)], how)[0]

    def switch_command(self, params: Mapping[str, Any]) -> Command:
        """The dead-man's switch: after the deadline, `--heal` the switch file (target + undo)."""
        heal = Command((sys.executable, "-m", "chaoslab.faults.webhook_outage", "--heal", switch_file(params)))
        return Command(dead_mans_switch([heal], self.deadline(), params["marker"]))

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        params, p = injection.undo[0].params, self.params
        lines = [" ".join(self.switch_command(params).argv[:3]) + f" ... (heal after {self.deadline()} s)"]
        lines += [f"label namespace {ns} {LABEL}={params['tag']}" for ns in params["namespaces"]]
        if _on_pod(params):
            what = "Service" if p.mode == "unreachable" else f"ConfigMap (the server), Secret (its certificate), " \
                                                              f"Pod ({params['image']}) and Service"
            lines.append(f"create {what} {params['podNamespace']}/{webhook_pod.name(params['tag'])}")
        elif p.mode != "unreachable":
            lines.append("start: " + " ".join(self.server_command(target, params, 0).argv))
        lines.append(f"create {p.type} webhook configuration {params['name']}: {p.mode} at {self.url(params)}, "
                     f"failurePolicy {p.failurePolicy}, timeoutSeconds {p.timeoutSeconds}, resources "
                     f"{', '.join(p.resources)}, operations {', '.join(p.operations)}, namespaces "
                     f"{', '.join(p.namespaces)}")
        return lines, undo_lines(params)

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        p, params = self.params, injection.undo[0].params
        until = int(time.time()) + self.server_lifetime()
        try:
            api = target.api()
            d = Path(params["dir"])
            bundle = make_certificates(d, params["address"], p.badCert if p.mode == "bad-cert" else None)
            Path(switch_file(params)).write_text(json.dumps({"target": target.describe(), "undo": dict(params)}))
            subprocess.run(self.switch_command(params).argv, check=True, timeout=10)
            for ns in params["namespaces"]:
                if ns.startswith("chaoslab-"):
                    _ensure_namespace(api, ns)
                api.patch(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {LABEL: params["tag"]}}})
            if _on_pod(params):
                self._start_pod(api, params, d, until)
            elif p.mode != "unreachable":
                target.run_commands([self.server_command(target, params, until)])
            config = self.configuration(params, bundle)
            api.create(configuration_path(p.type), config)
        except (ChaoslabError, OSError, subprocess.SubprocessError) as exc:
            try:
                remove_webhook(target, params)
            except ChaoslabError as again:
                raise InjectionError(f"webhook-outage: could not set up ({exc}); and the undo failed too "
                                     f"({again}); run `chaoslab recover`") from exc
            raise InjectionError(f"webhook-outage: could not set up the {p.mode} webhook ({exc}); removed "
                                 f"again") from exc
        waited = self.await_in_force(target, params)
        record("webhook", fault=self.kind, index=injection.index, name=params["name"], type=p.type, mode=p.mode,
               url=self.url(params), failurePolicy=p.failurePolicy, timeoutSeconds=p.timeoutSeconds,
               rules=config["webhooks"][0]["rules"], namespaces=list(p.namespaces), inForceAfter=waited)

    def _start_pod(self, api: KubeApi, params: Mapping[str, Any], d: Path, until: int) -> None:
        """The server as a pod behind a Service, Ready before the configuration names it."""
        p, tag, ns = self.params, params["tag"], params["podNamespace"]
        webhook_pod.create(api, webhook_pod.objects(
            tag, ns, params["image"], p.mode, p.timeoutSeconds + HANG_MARGIN, until, self.server_lifetime(),
            (d / "server.crt").read_bytes(), (d / "server.key").read_bytes()))
        if p.mode != "unreachable":
            webhook_pod.await_ready(api, tag, ns, float(params["startTimeout"]), params["image"])

    def await_in_force(self, target: Target, params: Mapping[str, Any]) -> float | None:
        """Wait until every apiserver calls the webhook, so the fault holds from the `webhook` event on: an
        apiserver applies a new configuration once its informer has it, which can take seconds when its
        watches are relisting. Seen as a dry-run CREATE of a ConfigMap in a matched namespace, through each
        apiserver (`_admission_checks`), refused. Only where a refusal is what the webhook does (configmaps
        CREATE matched; deny, error500, bad-cert or unreachable under failurePolicy Fail); elsewhere None at
        once. Seconds waited; `InjectionError` after IN_FORCE_TIMEOUT.

        A refusal counts when it is the webhook's: its denial in mode deny, else a failed call quoting the
        webhook's name. A server pod's Service that an apiserver has not seen yet (its informer lags) makes
        the call fail before it reaches the webhook (`service "…" not found` in every mode): that apiserver
        is asked again."""
        p = self.params
        matched = any(r in ("configmaps", "*") for r in p.resources) and any(o in ("CREATE", "*") for o in
                                                                            p.operations)
        if not matched or p.failurePolicy != "Fail" or p.mode not in ("deny", "error500", "bad-cert", "unreachable"):
            return None
        unseen = f'service "{webhook_pod.name(params["tag"])}" not found' if _on_pod(params) else None
        answer = "denied the request" if p.mode == "deny" else webhook_name(params)

        def in_force(status: int, text: str) -> bool:
            return status >= 400 and answer in text and (unseen is None or unseen not in text)

        started = time.monotonic()
        late = _await_admission(target, params, in_force, p.timeoutSeconds + 5)
        if late:
            url, text = late
            if unseen and unseen in text:
                raise InjectionError(
                    f"webhook-outage: an apiserver behind {url} has not seen the webhook's Service "
                    f"{IN_FORCE_TIMEOUT:.0f} s after it was created ({text[:300]}): its own Service informer is "
                    "stale (seen on Kubernetes 1.20 for minutes after etcd lost its leader); restarting that "
                    "apiserver clears it")
            raise InjectionError(f"webhook-outage: {url} still admits what the webhook refuses "
                                 f"{IN_FORCE_TIMEOUT:.0f} s after the configuration was created (its last "
                                 f"answer: {text[:300] or 'none'})")
        return round(time.monotonic() - started, 3)


UNREACHABLE = -1
"""`_await_admission`'s status for an apiserver that cannot be reached (not even a timeout)."""
LB_ANSWERS = 9
"""The fewest answers in a row through a load balancer that count as every apiserver's."""


def _admission_checks(target: Target) -> list[tuple[str, int]]:
    """Where to ask whether the apiservers apply a configuration, and how many answers in a row it takes:
    each apiserver the target reaches one by one once; where it reaches them only through one endpoint
    (a kubeconfig's server, behind which a load balancer picks an apiserver per connection), three answers
    per apiserver in `default/endpoints/kubernetes` and at least LB_ANSWERS, each on a fresh connection.
    Certain behind a round-robin balancer (the lab's haproxy); behind one that hashes connections, likely."""
    endpoints = target.apiserver_endpoints()
    one_by_one = [(url, 1) for host, url in endpoints.items() if host != "lb"]
    if one_by_one:
        return one_by_one
    try:
        resp = target.api().request("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
        subsets = resp.json().get("subsets") or [] if resp.status_code == 200 else []
        count = sum(len(s.get("addresses") or []) for s in subsets)
    except (ChaoslabError, ValueError):  # no answer, or not JSON: as many as the floor allows for
        count = 0
    return [(endpoints["lb"], max(3 * count, LB_ANSWERS))]


def _await_admission(target: Target, params: Mapping[str, Any], done: Callable[[int, str], bool],
                     timeout: float) -> tuple[str, str] | None:
    """Send dry-run CREATEs of a ConfigMap in the first matched namespace through `_admission_checks` until
    `done(status, text)` holds for each as many times in a row as it needs, at most IN_FORCE_TIMEOUT
    seconds; None, or the URL still not done and its last answer. `timeout`: seconds per request; status 0
    when it passes without an answer, UNREACHABLE when the apiserver cannot be reached at all."""
    ns = params["namespaces"][0] if params["namespaces"] else "default"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"chaoslab-in-force-{params['tag']}"}}
    session = target.api().session
    started = time.monotonic()
    waiting = _admission_checks(target)
    in_a_row = 0
    while waiting:
        url, needed = waiting[0]
        try:
            resp = session.post(f"{url}/api/v1/namespaces/{ns}/configmaps", params={"dryRun": "All"}, json=body,
                                headers={"Connection": "close"} if needed > 1 else None, timeout=timeout)
            status, text = resp.status_code, _message(resp)
        except requests.Timeout:
            status, text = 0, ""
        except OSError:  # requests' other errors are OSErrors: refused, reset, no route
            status, text = UNREACHABLE, ""
        if done(status, text):
            in_a_row += 1
            if in_a_row >= needed:
                waiting.pop(0)
                in_a_row = 0
            continue
        in_a_row = 0
        if time.monotonic() - started > IN_FORCE_TIMEOUT:
            return url, text
        time.sleep(0.2)
    return None


def _message(resp: requests.Response) -> str:
    """A refusal's Status message, as the apiserver wrote it (the raw body escapes its quotes); else the body."""
    try:
        message = resp.json().get("message")
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        return resp.text
    return message if isinstance(message, str) else resp.text


def webhook_name(params: Mapping[str, Any]) -> str:
    """The webhook's name in its configuration, which the apiservers quote when it refuses a request."""
    return f"{params['tag']}.webhook-outage.chaoslab.io"


def _on_pod(params: Mapping[str, Any]) -> bool:
    """The server runs as a pod behind a Service (`webhook_pod`), not as a process the target hosts (an undo
    written before placements existed has no `placement`: a process)."""
    return params.get("placement") == "pod"


def switch_file(params: Mapping[str, Any]) -> str:
    return str(Path(params["dir"]).with_suffix(".switch.json"))


def undo_lines(params: Mapping[str, Any]) -> list[str]:
    server = (f"delete pod, service, secret and configmap {params['podNamespace']}/{webhook_pod.name(params['tag'])}"
              if _on_pod(params) else "stop the webhook server")
    return [f"delete {params['type']} webhook configuration {params['name']}",
            f"disarm the dead-man's switch {params['marker']}", server,
            *[f"remove label {LABEL} from namespace {ns}" for ns in params["namespaces"]],
            f"remove {params['dir']}"]


def _exists(api: KubeApi, namespace: str) -> bool:
    return api.request("GET", f"/api/v1/namespaces/{namespace}").status_code == 200


def _ensure_namespace(api: KubeApi, name: str) -> None:
    if _exists(api, name):
        return
    try:
        api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiError as exc:
        if exc.status != 409:
            raise


SERVER_EXIT = 5.0
"""Seconds the server gets to exit after SIGTERM."""


def remove_webhook(target: Target, params: Mapping[str, Any], disarm: bool = True) -> None:
    """The `delete-webhook` undo: configuration first (what blocks writes), then the switch (`disarm`; not
    when the switch itself heals), then, once no apiserver calls the webhook on a dry-run ConfigMap CREATE
    (`_await_admission`; a webhook that matches no such write, or admits it, is not waited for), the server (stopped
    earlier, a Fail webhook would refuse writes for longer than the fault), the labels and the files;
    `RevertError` if the configuration or the server is still there, or an apiserver still calls the
    webhook IN_FORCE_TIMEOUT seconds after the configuration was deleted."""
    api = target.api()
    path = configuration_path(params["type"], params["name"])
    api.delete(path)
    if disarm:
        subprocess.run(cancel_dead_mans_switch(params["marker"]).argv, check=False, timeout=10)
    ours = webhook_name(params)

    def lifted(status: int, text: str) -> bool:
        # An apiserver that cannot be reached calls nothing (and reads the configurations anew when it is
        # back); one that refuses by itself (429, 5xx) may still call the webhook.
        return status == UNREACHABLE or (0 < status < 500 and status != 429 and ours not in text)

    still = _await_admission(target, params, lifted, 2.0)
    if _on_pod(params):
        running = webhook_pod.delete(api, params["tag"], params["podNamespace"])
    else:
        running = _stop_server(target, params)
    for ns in params["namespaces"]:
        try:
            api.patch(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {params["label"]: None}}})
        except ApiError as exc:
            if exc.status != 404:
                raise
    shutil.rmtree(params["dir"], ignore_errors=True)
    Path(switch_file(params)).unlink(missing_ok=True)
    left = []
    if api.request("GET", path).status_code != 404:
        left.append(f"configuration {params['name']}")
    if still:
        left.append(f"the webhook's calls from {still[0]} ({still[1][:200] or 'no answer'})")
    left += running
    if left:
        raise RevertError(f"webhook-outage {params['tag']}: left after the undo: {', '.join(left)}")


def _stop_server(target: Target, params: Mapping[str, Any]) -> list[str]:
    """TERM the detached server; what is still running after SERVER_EXIT seconds."""
    how, _ = target.service_host()
    pattern = process_pattern(params["marker"])
    target.run_commands(wrap([Command(("pkill", "-TERM", "-f", pattern), may_fail=True)], how))
    deadline = time.monotonic() + SERVER_EXIT
    running = _running(target, pattern)
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
        running = _running(target, pattern)
    return [f"webhook server pid {' '.join(running)}"] if running else []


def _running(target: Target, pattern: str) -> list[str]:
    return target.run_commands([Command(("pgrep", "-f", pattern), may_fail=True)])[0].split()


def heal_from_file(path: Path) -> None:
    """What the dead-man's switch runs: the undo in `path`, on the target described there."""
    _heal(json.loads(path.read_text()))


def _heal(data: Mapping[str, Any]) -> None:
    """The undo in a switch file's `data`, on the target described there."""
    from chaoslab.targets import target_from_description

    remove_webhook(target_from_description(data["target"]), data["undo"], disarm=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaoslab.faults.webhook_outage")
    parser.add_argument("--heal", type=Path, required=True, help="switch file written by the fault")
    args = parser.parse_args(argv)
    if not args.heal.exists():
        return 0  # healed already
    data = json.loads(args.heal.read_text())  # read once: a failed undo removes the file too
    for attempt in range(5):  # the API may be briefly unavailable: try for about a minute
        try:
            _heal(data)
            return 0
        except ChaoslabError as exc:
            print(f"webhook-outage heal: {exc}", file=sys.stderr)
            time.sleep(2 + 4 * attempt)
    return 1


if __name__ == "__main__":
    sys.exit(main())
