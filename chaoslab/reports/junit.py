"""`junit.xml` for CI: one `<testsuite>` per experiment, one `<testcase>` per SLO, a `<failure>` with
measured value, target and evidence for each violated SLO that gates (`chaoslab run --fail-on`), a
`<skipped>` for a violated SLO that does not gate, and the warning of an SLO close to its limit in the
case's `<system-out>`. The common JUnit schema (Jenkins, GitLab, GitHub test reporters) with nothing they
would reject. Called by `chaoslab.reports.write_reports`; `merge` combines the files of several run
directories into the one `chaoslab run --junit FILE` writes, with an `<error>` case for each experiment
that could not be carried out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from chaoslab.judge.gate import Gate, Policy, evaluate
from chaoslab.judge.measure import Measurements
from chaoslab.judge.verdict import Verdict
from chaoslab.spec.model import Experiment


def render(experiment: Experiment, verdict: Verdict, measurements: list[Measurements],
           gate: Gate | None = None) -> str:
    gate = gate or evaluate(verdict, Policy())
    seconds = sum(m.end for m in measurements)
    failures = sum(s.status == "fail" for s in gate.slos)
    skipped = sum(s.status == "ignored" for s in gate.slos)
    root = ET.Element("testsuites", name="chaoslab", tests=str(len(verdict.slos)), failures=str(failures),
                      errors="0", time=f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=experiment.name, tests=str(len(verdict.slos)),
                          failures=str(failures), errors="0", skipped=str(skipped), time=f"{seconds:.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("schema", verdict.schema), ("runs", str(len(measurements))),
                        ("settle", f"{experiment.settle:g}"), ("source", str(experiment.source or "")),
                        ("gate", gate.policy.describe())):
        ET.SubElement(props, "property", name=name, value=value)
    for s in gate.slos:
        r = s.result
        case = ET.SubElement(suite, "testcase", classname=f"chaoslab.{experiment.name}",
                             name=f"{r.metric} {r.target}", time="0")
        warning = "INCONCLUSIVE" if s.outcome == "inconclusive" else "WARNING"
        details = "\n".join(x for x in (f"{warning}: {r.metric} {s.note}" if s.status == "warn" else "",
                                        r.message, f"evidence: {r.evidence}",
                                        f"per run: {r.values}" if len(r.values) > 1 else "",
                                        r.confidence, r.where) if x)
        if r.low is not None and r.high is not None:
            ET.SubElement(case, "properties").extend([
                ET.Element("property", name="measured", value=f"{r.measured}"),
                ET.Element("property", name="low", value=f"{r.low}"),
                ET.Element("property", name="high", value=f"{r.high}"),
                ET.Element("property", name="outcome", value=r.outcome)])
        if s.status == "fail":
            failure = ET.SubElement(case, "failure", message=r.message,
                                    type="SloInconclusive" if s.outcome == "inconclusive" else "SloViolated")
            failure.text = details
        elif s.status == "ignored":
            ET.SubElement(case, "skipped", message=f"{r.message} ({s.note})")
            ET.SubElement(case, "system-out").text = details
        else:
            ET.SubElement(case, "system-out").text = details
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def merge(documents: Sequence[str], errors: Sequence[tuple[str, str]] = (),
          skipped: Sequence[tuple[str, str]] = (), name: str = "chaoslab") -> str:
    """One `<testsuites>` from the junit.xml of several experiments, plus one suite with an `<error>` case
    for each (experiment, message) that could not be carried out (exit code 3), and one with a `<skipped>`
    case for each (step, reason) a game day skipped."""
    root = ET.Element("testsuites", name=name)
    for doc in documents:
        root.extend(ET.fromstring(doc).findall("testsuite"))
    for suite_name, message in errors:
        suite = ET.SubElement(root, "testsuite", name=suite_name, tests="1", failures="0", errors="1",
                              skipped="0", time="0")
        case = ET.SubElement(suite, "testcase", classname=f"chaoslab.{suite_name}", name="run", time="0")
        ET.SubElement(case, "error", message=message, type="RunNotCarriedOut").text = message
    for suite_name, reason in skipped:
        suite = ET.SubElement(root, "testsuite", name=suite_name, tests="1", failures="0", errors="0",
                              skipped="1", time="0")
        case = ET.SubElement(suite, "testcase", classname=f"chaoslab.{suite_name}", name="run", time="0")
        ET.SubElement(case, "skipped", message=reason)
    suites = root.findall("testsuite")
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in suites):.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
