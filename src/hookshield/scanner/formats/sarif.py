"""``--format sarif``: SARIF 2.1.0 that GitHub code scanning accepts.

One rule per check id (every registered check, so rule indexes stay stable across runs), with
``security-severity``; results sit at a repository file (``--sarif-location``) because GitHub
rejects ``https:`` URIs as result locations, and the endpoint's URL goes in the message. Skipped,
inconclusive and broken checks are tool notifications, not results.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

from hookshield.scanner.model import Outcome, Report, Severity
from hookshield.scanner.registry import CHECKS

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.0",
    Severity.LOW: "2.0",
}


# What changes from run to run in a probe's summary: a measured time, a random path or id.
_VARYING = re.compile(r"[0-9a-f]{8,}|\d+(?:\.\d+)?", re.IGNORECASE)


def _stable(request: str) -> str:
    """``request`` without what varies between runs, so that GitHub keeps one alert per flaw."""
    return _VARYING.sub("#", request)


def _rule(check_id: str) -> dict[str, Any]:
    check = CHECKS[check_id]
    properties: dict[str, Any] = {"tags": ["security", str(check.category)], "precision": "high"}
    if check.severity in _SECURITY_SEVERITY:
        properties["security-severity"] = _SECURITY_SEVERITY[check.severity]
    return {
        "id": check_id,
        "name": check.__name__,
        "shortDescription": {"text": check.title[:1024]},
        "fullDescription": {"text": f"{check.title} ({check.category}, {check.severity})."[:1024]},
        "help": {"text": check.remediation, "markdown": check.remediation},
        "defaultConfiguration": {"level": _LEVEL[check.severity]},
        "properties": properties,
    }


def render(report: Report, *, location: str = "hookshield-scan.txt") -> str:
    ids = sorted(CHECKS)
    index = {check_id: i for i, check_id in enumerate(ids)}
    results = []
    seen: Counter[str] = Counter()
    for finding in report.findings:
        evidence = finding.evidence
        status = "no answer" if evidence.status is None else f"HTTP {evidence.status}"
        key = f"{finding.id}|{report.target}|{_stable(evidence.request)}"
        seen[key] += 1  # findings alike but for what varies stay apart, in report order
        fingerprint = hashlib.sha256(f"{key}|{seen[key]}".encode()).hexdigest()
        results.append(
            {
                "ruleId": finding.id,
                "ruleIndex": index[finding.id],
                "level": _LEVEL[finding.severity],
                "message": {
                    "text": f"{finding.title} at {report.target}: {evidence.request} -> {status}."
                },
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": location},
                            "region": {"startLine": 1},
                        }
                    }
                ],
                # v2: v1 hashed the summary whole, times and random paths included.
                "partialFingerprints": {"hookshieldFinding/v2": fingerprint},
                "properties": {"target": report.target, "evidence": evidence.to_json()},
            }
        )
    notifications = [
        {
            "level": "note",
            "descriptor": {"id": r.id},
            "message": {"text": f"{r.id} {r.outcome.value}: {r.reason}"},
        }
        for r in report.results
        if r.outcome not in (Outcome.PASSED, Outcome.FAILED)
    ]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hookshield",
                        "semanticVersion": report.tool_version,
                        "informationUri": "https://github.com/hookshield/hookshield",
                        "rules": [_rule(check_id) for check_id in ids],
                    }
                },
                "automationDetails": {"id": "hookshield-scan/"},
                "invocations": [
                    {"executionSuccessful": True, "toolExecutionNotifications": notifications}
                ],
                "results": results,
                "properties": {
                    "target": report.target,
                    "score": report.score,
                    "grade": report.grade,
                    "checks_run": report.checks_run,
                    "checks_applicable": report.checks_applicable,
                    "incomplete": report.incomplete,
                },
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
