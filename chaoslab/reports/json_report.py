"""`verdict.json`: the verdict as versioned JSON (schema `chaoslab.io/verdict/v1`), for programs. Keys
sorted and no timestamps of its own, so rebuilding from the same timelines gives the same bytes. Called
by `chaoslab.reports.write_reports`; read back with `Verdict.from_json`."""

from __future__ import annotations

import json

from chaoslab.judge.verdict import Verdict


def render(verdict: Verdict) -> str:
    return json.dumps(verdict.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
