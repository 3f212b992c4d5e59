"""Coverage and incomplete scans: what a report proves, stated in every format."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

from hookshield.scanner.formats import OutputFormat, render
from hookshield.scanner.model import Outcome, Report, coverage
from tests.scanner.conftest import result


def test_coverage_counts_verdicts_over_what_the_target_can_express() -> None:
    results = [
        result("auth.no-client-cert", Outcome.PASSED),
        result("auth.untrusted-cert", Outcome.FAILED),
        result("auth.expired-cert", Outcome.SKIPPED, reason="needs --mint-ca"),
        result("replay.unsigned-accepted", Outcome.INCONCLUSIVE, reason="throttled"),
        result("rate.no-limit", Outcome.ERROR, reason="RuntimeError"),
        result("tls.legacy-protocol", Outcome.NOT_APPLICABLE, reason="needs https"),
    ]
    # Skipped, inconclusive and broken checks were applicable and not run; not applicable is out.
    assert coverage(results) == (2, 5)


def test_every_format_states_coverage_and_why_a_scan_is_incomplete(report: Report) -> None:
    incomplete = dataclasses.replace(
        report, grade="incomplete", incomplete="the baseline delivery was refused (401)"
    )
    run, applicable = report.checks_run, report.checks_applicable
    assert (run, applicable) == (7, 10)
    pretty = render(incomplete, OutputFormat.PRETTY).splitlines()
    assert f"coverage {run}/{applicable} checks" in pretty[1]
    assert "incomplete: the baseline delivery was refused (401)" in pretty[2]
    document = json.loads(render(incomplete, OutputFormat.JSON))
    assert document["grade"] == "incomplete"
    assert document["coverage"] == {"checks_run": run, "checks_applicable": applicable}
    assert document["incomplete"] == "the baseline delivery was refused (401)"
    sarif = json.loads(render(incomplete, OutputFormat.SARIF, sarif_location="x.txt"))
    properties = sarif["runs"][0]["properties"]
    assert (properties["checks_run"], properties["checks_applicable"]) == (run, applicable)
    assert properties["incomplete"] == incomplete.incomplete
    junit = ET.fromstring(render(incomplete, OutputFormat.JUNIT).split("\n", 1)[1])  # noqa: S314
    values = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert values["coverage"] == f"{run}/{applicable}"
    assert values["grade"] == "incomplete"
    html = render(incomplete, OutputFormat.HTML)
    assert f"coverage {run}/{applicable} checks" in html
    assert "Incomplete:</strong> the baseline delivery was refused (401)" in html
