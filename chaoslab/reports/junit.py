"""`junit.xml` for CI: one `<testsuite>` per experiment, one `<testcase>` per SLO, a `<failure>` with
measured value, target and evidence for each violated SLO. The common JUnit schema (Jenkins, GitLab,
GitHub test reporters) with nothing they would reject. Called by `chaoslab.reports.write_reports`."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from chaoslab.measure import Measurements
from chaoslab.spec.model import Experiment
from chaoslab.verdict import Verdict


def render(experiment: Experiment, verdict: Verdict, measurements: list[Measurements]) -> str:
    seconds = sum(m.end for m in measurements)
    failures = sum(not r.passed for r in verdict.slos)
    root = ET.Element("testsuites", name="chaoslab", tests=str(len(verdict.slos)), failures=str(failures),
                      errors="0", time=f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=experiment.name, tests=str(len(verdict.slos)),
                          failures=str(failures), errors="0", skipped="0", time=f"{seconds:.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("schema", verdict.schema), ("runs", str(len(measurements))),
                        ("settle", f"{experiment.settle:g}"), ("source", str(experiment.source or ""))):
        ET.SubElement(props, "property", name=name, value=value)
    for r in verdict.slos:
        case = ET.SubElement(suite, "testcase", classname=f"chaoslab.{experiment.name}",
                             name=f"{r.metric} {r.target}", time="0")
        details = "\n".join(x for x in (r.message, f"evidence: {r.evidence}",
                                        f"per run: {r.values}" if len(r.values) > 1 else "",
                                        r.confidence, r.where) if x)
        if r.passed:
            ET.SubElement(case, "system-out").text = details
        else:
            failure = ET.SubElement(case, "failure", message=r.message, type="SloViolated")
            failure.text = details
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
