"""The drain summary in report.md and report.html: present when the run drained a node, absent otherwise."""

from __future__ import annotations

from measure.synthetic import drained, scheduler_kill

from chaoslab.judge.measure import measure
from chaoslab.judge.verdict import judge
from chaoslab.reports import html, markdown
from chaoslab.spec.model import Experiment, FaultSpec, SloSpec

EXPERIMENT = Experiment(name="drain", faults=(FaultSpec("drain-node", {"nodes": ["n1"], "namespaces": ["shop"]}),),
                        duration=10.0, steady_state=("apiserver-ready",),
                        slos=(SloSpec("reschedulingTime", "max", 30.0), SloSpec("pdbViolations", "max", 0.0)))


def test_a_drained_node_gets_a_row_with_its_pods_and_reasons() -> None:
    tl = drained()
    m = measure(tl, EXPERIMENT.steady_state, EXPERIMENT.settle)
    verdict = judge(EXPERIMENT, [m])
    assert verdict.passed
    md = markdown.render(EXPERIMENT, verdict, [tl], [m])
    assert ("| n1 | 8.00 s | yes | 2 evicted, 1 skipped (1 PDB refusals retried) | "
            "skipped: ignoring DaemonSet-managed Pods |") in md
    page = html.render(EXPERIMENT, verdict, [tl], [m])
    assert "<h3>Drain</h3>" in page and "ignoring DaemonSet-managed Pods" in page


def test_a_run_without_a_drain_has_no_drain_summary() -> None:
    tl = scheduler_kill()
    m = measure(tl, EXPERIMENT.steady_state, EXPERIMENT.settle)
    verdict = judge(EXPERIMENT, [m])
    assert "Drain:" not in markdown.render(EXPERIMENT, verdict, [tl], [m])
    assert "<h3>Drain</h3>" not in html.render(EXPERIMENT, verdict, [tl], [m])
