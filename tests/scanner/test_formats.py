from __future__ import annotations

import dataclasses
import json
import re
from importlib import resources
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema

from hookshield.scanner.formats import OutputFormat, render
from hookshield.scanner.formats.many import render_many
from hookshield.scanner.model import Evidence, Report
from hookshield.scanner.registry import CHECKS

DATA = Path(__file__).parent.parent / "data"


def report_schema() -> dict:  # type: ignore[type-arg]
    text = resources.files("hookshield.scanner").joinpath("report.schema.json").read_text()
    return dict(json.loads(text))


def test_json_matches_the_contract_schema(report: Report) -> None:
    data = json.loads(render(report, OutputFormat.JSON))
    jsonschema.validate(data, report_schema())
    assert data["tool"] == {"name": "hookshield", "version": "9.9.9"}
    assert data["started_at"] == "2026-11-28T12:00:00Z"
    assert data["findings"][0]["severity"] == "critical"
    assert {s["id"] for s in data["skipped"]} == {"auth.expired-cert"}
    assert {s["id"] for s in data["inconclusive"]} == {"replay.unsigned-accepted"}
    assert data["categories"]["authentication"]["checks_skipped"] == 1


def test_the_schema_refuses_a_renamed_field(report: Report) -> None:
    data = json.loads(render(report, OutputFormat.JSON))
    data["findings"][0]["check"] = data["findings"][0].pop("id")
    try:
        jsonschema.validate(data, report_schema())
    except jsonschema.ValidationError:
        return
    raise AssertionError("a renamed field passed the schema")


def test_sarif_is_what_github_code_scanning_accepts(report: Report) -> None:
    log = json.loads(render(report, OutputFormat.SARIF, sarif_location="scan-targets.txt"))
    schema = json.loads((DATA / "sarif-2.1.0-subset.schema.json").read_text())
    jsonschema.validate(log, schema)
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(CHECKS)  # one rule per check, stable indexes
    by_id = {r["id"]: r for r in rules}
    assert by_id["auth.no-client-cert"]["properties"]["security-severity"] == "9.5"
    assert "security-severity" not in by_id["exposure.server-banner"]["properties"]
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri == "scan-targets.txt"  # never an https: URI (GitHub rejects those)
        assert report.target in res["message"]["text"]
    assert len(run["results"]) == len(report.findings)
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert {n["descriptor"]["id"] for n in notes} == {
        "auth.expired-cert",
        "replay.unsigned-accepted",
        "rate.no-limit",
    }


def test_sarif_fingerprints_stay_the_same_from_run_to_run(report: Report) -> None:
    # What varies between runs (a measured time, a random path) must not make a new alert.
    def fingerprints(request: str, excerpt: str) -> list[str]:
        evidence = Evidence(request, 200, excerpt, 12.5)
        changed = dataclasses.replace(
            report,
            results=tuple(
                dataclasses.replace(
                    r, findings=tuple(dataclasses.replace(f, evidence=evidence) for f in r.findings)
                )
                for r in report.results
            ),
        )
        results = json.loads(render(changed, OutputFormat.SARIF))["runs"][0]["results"]
        return [res["partialFingerprints"]["hookshieldFinding/v2"] for res in results]

    first = fingerprints("GET /hookshield-scan-1a2b3c4d/ (nested): 2345 ms against 12 ms", "a")
    second = fingerprints("GET /hookshield-scan-9f8e7d6c/ (nested): 2811 ms against 15 ms", "b")
    assert first == second
    assert len(set(first)) == len(first)  # findings alike but for those stay apart
    assert fingerprints("GET /other/ (nested)", "a") != first


def test_sarif_severity_strings_are_in_githubs_ranges(report: Report) -> None:
    log = json.loads(render(report, OutputFormat.SARIF))
    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        value = rule["properties"].get("security-severity")
        if value is not None:
            assert 0.1 <= float(value) <= 10.0
        assert len(rule["shortDescription"]["text"]) <= 1024


def test_junit_has_one_case_per_check(report: Report) -> None:
    suite = ET.fromstring(render(report, OutputFormat.JUNIT).split("\n", 1)[1])  # noqa: S314
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {r.id for r in report.results}
    assert cases["auth.no-client-cert"].find("failure") is not None
    assert cases["auth.expired-cert"].find("skipped") is not None
    assert cases["rate.no-limit"].find("error") is not None
    assert len(list(cases["authz.foreign-identity"])) == 0  # passed
    assert suite.get("failures") == "5"


def test_html_is_one_self_contained_file(report: Report) -> None:
    page = render(report, OutputFormat.HTML)
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # no external assets
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in page  # evidence is escaped
    assert f">{report.grade}<" in page
    for category in report.categories:
        assert str(category) in page


def test_pretty_has_summary_findings_skipped_and_fixes(report: Report) -> None:
    text = render(report, OutputFormat.PRETTY)
    assert f"score {report.score}/100" in text
    assert "grade F" in text
    assert "42 requests" in text
    assert "auth.no-client-cert" in text
    assert "Skipped checks" in text
    assert "needs --mint-ca" in text
    assert "Remediation" in text
    assert "\x1b[" not in text  # no colour unless asked


def test_pretty_prints_what_the_target_sent_as_it_is(report: Report) -> None:
    # A Server header, an excerpt or a reason is the target's text: rich's markup ("[/x]" is a
    # closing tag, and fails) and emoji codes must not read it.
    hostile = "evil/1.0 [/x] [bold]big[/bold] :smile: \x1b[2J\x1b]0;owned\x07\x9b31m"
    evidence = Evidence(f"GET / ({hostile})", None, hostile)
    finding = report.findings[0]
    changed = dataclasses.replace(
        report,
        target=f"https://h.example/[/x]{hostile}",
        incomplete=hostile,
        results=tuple(
            dataclasses.replace(
                result,
                reason=result.reason and hostile,
                findings=tuple(dataclasses.replace(f, evidence=evidence) for f in result.findings),
            )
            for result in report.results
        ),
    )
    text = render(changed, OutputFormat.PRETTY)
    assert text.count("[/x]") >= 4  # target, incomplete, a reason, evidence
    assert "[bold]big[/bold]" in text
    assert ":smile:" in text
    assert finding.id in text
    for control in ("\x1b", "\x07", "\x9b"):  # no escape sequence reaches the terminal
        assert control not in text


def test_several_targets(report: Report) -> None:
    both = [report, report]
    data = json.loads(render_many(both, OutputFormat.JSON))
    assert len(data["reports"]) == 2
    assert data["summary"]["worst_grade"] == report.grade
    sarif = json.loads(render_many(both, OutputFormat.SARIF))
    assert [r["automationDetails"]["id"] for r in sarif["runs"]] == [
        "hookshield-scan/target-0",
        "hookshield-scan/target-1",
    ]
    suites = ET.fromstring(render_many(both, OutputFormat.JUNIT).split("\n", 1)[1])  # noqa: S314
    assert len(list(suites)) == 2


def test_several_targets_name_the_unreachable_and_the_incomplete_first(report: Report) -> None:
    schema = report_schema()
    graded = dataclasses.replace(report, incomplete=None)
    untested = dataclasses.replace(
        report, score=95, grade="incomplete", incomplete="the baseline was refused (401)"
    )
    gone = "https://gone.example/hooks/: ConnectError: refused"
    for reports in ([graded, untested], [untested], []):
        data = json.loads(render_many(reports, OutputFormat.JSON, unreachable=[gone, gone]))
        for each in data["reports"]:
            jsonschema.validate(each, schema)
        summary = data["summary"]
        assert summary["targets"] == len(reports) + 2
        assert summary["unreachable"] == [gone, gone]
        # An incomplete report's score graded nothing: listed apart, never the worst score.
        assert summary["incomplete"] == [untested.target] * (untested in reports)
        worst = (graded.score, graded.grade) if graded in reports else (None, None)
        if reports == [untested]:  # none graded: the worst of all, its grade says incomplete
            worst = (untested.score, "incomplete")
        assert (summary["worst_score"], summary["worst_grade"]) == worst
    text = render_many([graded], OutputFormat.PRETTY, unreachable=[gone])
    assert f"unreachable: {gone}" in text
    suites = ET.fromstring(  # noqa: S314
        render_many([graded], OutputFormat.JUNIT, unreachable=[gone]).split("\n", 1)[1]
    )
    assert [suite.get("errors") for suite in suites][-1] == "1"
