"""Several targets in one output (``--targets``), and the combined summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from xml.etree import ElementTree as ET

from hookshield.scanner.formats import OutputFormat, junit, render
from hookshield.scanner.model import Report


def render_many(
    reports: list[Report],
    fmt: OutputFormat,
    *,
    color: bool = False,
    sarif_location: str = "hookshield-scan.txt",
    unreachable: Sequence[str] = (),
) -> str:
    """``reports``, and the targets that could not be reached (``unreachable``: why, for each),
    which every format but SARIF names too. One target alone is its report (nothing when it
    was not reached); SARIF has nothing to say of unreachable targets alone either."""
    if len(reports) + len(unreachable) <= 1:
        return (
            render(reports[0], fmt, color=color, sarif_location=sarif_location) if reports else ""
        )
    if fmt is OutputFormat.JSON:
        return _json(reports, unreachable)
    if fmt is OutputFormat.SARIF:
        return _sarif(reports, sarif_location) if reports else ""
    if fmt is OutputFormat.JUNIT:
        return _junit(reports, unreachable)
    parts = [render(r, fmt, color=color) for r in reports]
    if fmt is OutputFormat.PRETTY:
        lines = ["Summary"] + [
            f"  {r.grade}  {r.score:3}/100  {r.checks_run}/{r.checks_applicable}  {r.target}"
            for r in reports
        ]
        lines += [f"  unreachable: {why}" for why in unreachable]
        return "\n".join(parts) + "\n".join(lines) + "\n"
    return "\n".join(parts)


def _json(reports: list[Report], unreachable: Sequence[str]) -> str:
    # The worst graded report: an incomplete one's score graded nothing (they are listed apart),
    # unless none was graded (its grade then says "incomplete").
    graded = [r for r in reports if r.incomplete is None] or reports
    worst = min(graded, key=lambda r: r.score) if graded else None
    return (
        json.dumps(
            {
                "reports": [r.to_json() for r in reports],
                "summary": {
                    "targets": len(reports) + len(unreachable),
                    "worst_score": worst.score if worst else None,
                    "worst_grade": worst.grade if worst else None,
                    "worst_target": worst.target if worst else None,
                    "requests_sent": sum(r.requests_sent for r in reports),
                    "incomplete": [r.target for r in reports if r.incomplete is not None],
                    "unreachable": list(unreachable),
                },
            },
            indent=2,
        )
        + "\n"
    )


def _sarif(reports: list[Report], location: str) -> str:
    """One SARIF log with a run per target, each run's automation id telling them apart."""
    logs = [json.loads(render(r, OutputFormat.SARIF, sarif_location=location)) for r in reports]
    for index, log in enumerate(logs):
        log["runs"][0]["automationDetails"]["id"] = f"hookshield-scan/target-{index}"
    merged = logs[0]
    merged["runs"] = [log["runs"][0] for log in logs]
    return json.dumps(merged, indent=2) + "\n"


def _junit(reports: list[Report], unreachable: Sequence[str]) -> str:
    suites = ET.Element("testsuites", {"name": "hookshield scan"})
    for report in reports:
        suites.append(junit.suite(report))
    for why in unreachable:  # a suite of one errored case: the target was not tested
        suite = ET.SubElement(suites, "testsuite", {"name": f"hookshield scan {why}"})
        suite.attrib.update(tests="1", failures="0", errors="1", skipped="0")
        case = ET.SubElement(suite, "testcase", {"classname": "hookshield", "name": "baseline"})
        ET.SubElement(case, "error", {"message": f"unreachable: {why}"})
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
