"""``--format junit``: one test case per check (failed, passed or skipped)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from hookshield.scanner.model import Outcome, Report

__all__ = ["render", "suite"]


def render(report: Report) -> str:
    element = suite(report)
    ET.indent(element)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="unicode") + "\n"
    )


def suite(report: Report) -> ET.Element:
    """The report as one ``testsuite`` element (``--targets`` nests several in ``testsuites``)."""
    failed = len(report.with_outcome(Outcome.FAILED))
    errors = len(report.with_outcome(Outcome.ERROR))
    passed = len(report.with_outcome(Outcome.PASSED))
    element = ET.Element(
        "testsuite",
        {
            "name": f"hookshield scan {report.target}",
            "tests": str(len(report.results)),
            "failures": str(failed),
            "errors": str(errors),
            "skipped": str(len(report.results) - failed - errors - passed),
            "time": f"{report.duration_s:.3f}",
            "timestamp": report.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    properties = ET.SubElement(element, "properties")
    for name, value in (
        ("score", report.score),
        ("grade", report.grade),
        ("coverage", f"{report.checks_run}/{report.checks_applicable}"),
        ("incomplete", report.incomplete or ""),
        ("requests_sent", report.requests_sent),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    for result in report.results:
        case = ET.SubElement(
            element, "testcase", {"classname": f"hookshield.{result.category}", "name": result.id}
        )
        if result.outcome is Outcome.FAILED:
            lines = [
                f"{f.evidence.request} -> {f.evidence.status}: {f.evidence.excerpt}"
                for f in result.findings
            ]
            failure = ET.SubElement(
                case, "failure", {"message": result.title, "type": str(result.severity)}
            )
            failure.text = "\n".join(lines) + "\n\nFix: " + result.findings[0].remediation
        elif result.outcome is Outcome.ERROR:
            ET.SubElement(case, "error", {"message": result.reason})
        elif result.outcome in (Outcome.SKIPPED, Outcome.INCONCLUSIVE, Outcome.NOT_APPLICABLE):
            ET.SubElement(case, "skipped", {"message": f"{result.outcome.value}: {result.reason}"})
    return element
