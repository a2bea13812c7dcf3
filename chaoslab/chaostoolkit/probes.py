"""Chaos Toolkit probes (python provider, module `chaoslab.chaostoolkit.probes`): the control plane as
chaoslab sees it, for steady-state hypotheses. `chaos discover chaoslab` lists every function in `__all__`.

`steady_state` is the one `chaoslab export` uses: chaoslab's own steady-state conditions, judged exactly as
a chaoslab run judges them (`chaoslab.judge.conditions`) from a short burst of its probes, with `tolerance: true`.

    {"type": "probe", "name": "steady-state", "tolerance": true,
     "provider": {"type": "python", "module": "chaoslab.chaostoolkit.probes", "func": "steady_state",
                  "arguments": {"conditions": ["apiserver-ready", "etcd-quorum"], "target": "lab"}}}

Plain `typing` annotations on purpose: chaoslib's discovery names types from the annotation objects.
"""

import time
from typing import List  # noqa: UP035 (see the module docstring)

from chaoslab.clients.leaders import current_etcd_leader, holder_host
from chaoslab.clients.leaders import lease_holder as _lease_holder
from chaoslab.errors import SpecError
from chaoslab.judge.conditions import LEASE_OF, failing_conditions
from chaoslab.probes import ProbeGroup
from chaoslab.spec.model import STEADY_STATE_CONDITIONS
from chaoslab.targets import resolve_target
from chaoslab.timeline import Timeline

Names = List[str]  # noqa: UP006 -- chaoslib's discovery names `typing.List` "list", `list[str]` "object"

__all__ = ["apiserver_ready", "etcd_leader", "lease_holder", "steady_state"]

#: The chaoslab probe each condition is judged from.
PROBE_OF = {"apiserver-ready": "apiserver", "all-apiservers-ready": "apiserver", "etcd-quorum": "etcd",
            "etcd-leader": "etcd", "scheduler-leader": "lease", "controller-manager-leader": "lease",
            "scheduling": "canary"}
HOLD = 1.0
"""Seconds the conditions must hold together before `steady_state` says true."""


def etcd_leader(target: str = "lab") -> str:
    """The etcd member most reachable members name as leader (e.g. `cp2`); an empty string when none does."""
    return current_etcd_leader(resolve_target(target)) or ""


def lease_holder(lease: str = "kube-scheduler", target: str = "lab") -> str:
    """The host holding a leader-election Lease (`kube-scheduler` or `kube-controller-manager`), e.g.
    `cp1`; an empty string when the Lease is not held."""
    return holder_host(_lease_holder(resolve_target(target).api(), lease)) or ""


def apiserver_ready(endpoint: str = "lb", target: str = "lab") -> bool:
    """Whether an apiserver answers /readyz with 200: `lb` (the load-balanced endpoint) or a host (`cp1`)."""
    tgt = resolve_target(target)
    urls = tgt.apiserver_endpoints()
    if endpoint not in urls:
        raise SpecError([f"apiserver_ready: no endpoint {endpoint!r}; known: {', '.join(urls)}"])
    try:
        return bool(tgt.api().session.get(f"{urls[endpoint]}/readyz", timeout=2.5).status_code == 200)
    except OSError:
        return False


def steady_state(conditions: Names, target: str = "lab", timeout: float = 60.0) -> bool:
    """Whether chaoslab's steady-state `conditions` (apiserver-ready, all-apiservers-ready, etcd-quorum,
    etcd-leader, scheduler-leader, controller-manager-leader, scheduling) hold together for a second,
    waiting up to `timeout` seconds for them; judged from chaoslab's probes exactly as a chaoslab run judges
    its steady state."""
    unknown = [c for c in conditions if c not in STEADY_STATE_CONDITIONS]
    if unknown or not conditions:
        raise SpecError([(f"steady_state: unknown condition(s) {', '.join(unknown) or '(none given)'}; "
                          f"known: {', '.join(STEADY_STATE_CONDITIONS)}")])
    tgt = resolve_target(target)
    timeline = Timeline.start()
    kinds = dict.fromkeys(PROBE_OF[c] for c in conditions)
    probes = [{"kind": k, **({"names": [LEASE_OF[c] for c in conditions if c in LEASE_OF]} if k == "lease" else {})}
              for k in kinds]
    group = ProbeGroup.start(probes, tgt, timeline)
    try:
        time.sleep(HOLD)  # first samples (and the Lease watch's first list)
        since: float | None = None
        while timeline.now() < timeout + HOLD:
            now = timeline.now()
            ok = not failing_conditions(timeline, conditions, now, tgt.renewal_window)
            since = (since if since is not None else now) if ok else None
            if since is not None and now - since >= HOLD:
                return True
            time.sleep(0.25)
        return False
    finally:
        group.stop()
