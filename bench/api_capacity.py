"""Benchmark: the apiservers' capacity on a lab, per load pattern of `api-overload` — the request rate at
which the p99 latency of those requests crosses 1 s (the SIG Scalability SLO for mutating calls and
resource reads; cluster-wide LISTs are allowed 30 s by that SLO, the 1 s line says where they start to
queue).

For each pattern and each offered rate (doubling), on a settled lab: read every apiserver's /metrics,
run the fault's own load generator for `--seconds` at that rate (concurrency 64, 8 users, so the rate
is what limits it; relist: as many watchers as relist that often together), undo it, read /metrics again. Per step it prints what was offered and achieved
(answered requests per second, by the generator's own record), the generator's p99 (client side: the
median of its per-second p99s), and the apiservers' own p99 for that kind of call (the difference of
`apiserver_request_duration_seconds` over the step, all apiservers: the reference measured in the same
run) with APF's rejections. A pattern stops at the first step whose apiserver p99 is over 1 s, or that
achieved less than 80 % of the offered rate (saturated).

    python bench/api_capacity.py --lab NAME [--patterns list,writes,relist] [--seconds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from disk_latency import settled

from chaoslab.faults import build
from chaoslab.faults.base import apply_undo
from chaoslab.judge.measure import histogram_quantile
from chaoslab.probes.apiserver_metrics import parse
from chaoslab.targets.lab import LabTarget

RATES = {"list": [0.25, 0.5, 1, 2, 4, 8, 16, 32], "writes": [25, 50, 100, 200, 400, 800],
         "relist": [0.8, 1.6, 3.2, 6.4, 12.8]}
"""Offered requests per second, per pattern. relist: cluster-wide LISTs per second, as `concurrency`
watchers that all drop their watch and relist every `RELIST_PERIOD` seconds (5 s: 4 to 64 watchers)."""
RELIST_PERIOD = 5
CLASS = {"list": "read-cluster", "writes": "mutating", "relist": "read-cluster"}
"""The SLO class (`chaoslab.probes.apiserver_metrics.call_class`) of each pattern's requests."""


def metrics(target: LabTarget) -> dict[str, dict[str, Any]]:
    session = target.api().session
    return {host: parse(session.get(f"{url}/metrics", timeout=30).text)
            for host, url in target.apiserver_endpoints().items() if host != "lb"}


def delta(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], cls: str) -> dict[str, float]:
    """The latency histogram of one class over the step, all apiservers summed."""
    out: dict[str, float] = {}
    for host, a in after.items():
        b = before.get(host, {}).get("latency", {}).get(cls, {})
        for le, n in a["latency"].get(cls, {}).items():
            out[le] = out.get(le, 0.0) + n - b.get(le, 0.0)
    return out


def rejected(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> float:
    return sum(sum(a["rejected"].values()) - sum(before.get(h, {}).get("rejected", {}).values())
               for h, a in after.items())


def step(target: LabTarget, pattern: str, rate: float, seconds: float) -> dict[str, Any]:
    settled(target)
    shape = ({"concurrency": round(rate * RELIST_PERIOD), "period": f"{RELIST_PERIOD}s"} if pattern == "relist"
             else {"concurrency": 64, "rate": rate})
    fault = build("api-overload", {"pattern": pattern, "users": min(8, int(shape["concurrency"])), **shape,
                                   "requests": min(100_000, int(rate * seconds * 2) + 10)}, duration=seconds)
    injection = fault.resolve(target, 0)
    params = injection.undo[0].params
    fault.inject(target, injection)
    # Read /metrics once the seed is in place (inject returns then), so the seed's writes are not counted.
    before = metrics(target)
    time.sleep(seconds)
    after = metrics(target)
    for undo in injection.undo:
        apply_undo(target, undo)
    lines = [json.loads(x) for x in (Path(params["dir"]) / "stats.jsonl").read_text().splitlines()]
    per_second = [x for x in lines if "sent" in x and "event" not in x]   # one line a second of the load
    answered = sum(sum(x["answered"].values()) for x in per_second)
    ok = sum(n for x in per_second for status, n in x["answered"].items() if str(status).startswith("2"))
    span = max(1.0, len(per_second))
    p99s = [x["p99"] for x in per_second if x.get("p99") is not None]
    hist = delta(before, after, CLASS[pattern])
    return {"pattern": pattern, "offered": rate, "achieved": round(answered / span, 2), "ok": round(ok / span, 2),
            "client_p99": round(statistics.median(p99s), 3) if p99s else None,
            "client_p99_max": max(p99s, default=None),
            "server_p99": histogram_quantile(0.99, hist), "server_requests": hist.get("+Inf", 0.0),
            "apf_rejected": rejected(before, after)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", default="lab")
    parser.add_argument("--patterns", default="list,writes,relist")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rates", default=None, help="comma-separated offered rates instead of the defaults")
    args = parser.parse_args()
    target = LabTarget.running(args.lab)
    rows: list[dict[str, Any]] = []
    print("| pattern | offered req/s | achieved req/s | 2xx/s | client p99 (median of seconds) | client p99 max "
          "| apiserver p99 | apiserver requests | APF rejected |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for pattern in args.patterns.split(","):
        for rate in ([float(r) for r in args.rates.split(",")] if args.rates else RATES[pattern]):
            row = step(target, pattern, rate, args.seconds)
            rows.append(row)
            print(f"| {pattern} | {rate} | {row['achieved']} | {row['ok']} | {row['client_p99']} s | "
                  f"{row['client_p99_max']} s | {row['server_p99']} s | {row['server_requests']:.0f} | "
                  f"{row['apf_rejected']:.0f} |", flush=True)
            if (row["server_p99"] or 0) > 1.0 or row["achieved"] < 0.8 * rate:
                break
    print()
    for pattern in args.patterns.split(","):
        mine = [r for r in rows if r["pattern"] == pattern]
        under = [r for r in mine if (r["server_p99"] or 0) <= 1.0 and r["achieved"] >= 0.8 * r["offered"]]
        over = next((r for r in mine if r not in under), None)
        print(f"{pattern}: p99 within 1 s up to {under[-1]['achieved'] if under else '?'} req/s"
              + (f"; at {over['offered']} req/s offered: {over['achieved']} achieved, apiserver p99 "
                 f"{over['server_p99']} s" if over else "; never crossed within the rates tried"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
