from __future__ import annotations

import pytest

from hookshield.scanner.model import Category, Outcome, Report, Severity
from hookshield.scanner.registry import CHECKS, Check, register
from hookshield.scanner.scoring import grade, score
from tests.scanner.conftest import result

# The catalog of docs/scanner-checks.md: ids are a public interface.
CATALOG = {
    "auth.no-client-cert": ("authentication", "critical"),
    "auth.untrusted-cert": ("authentication", "critical"),
    "auth.forged-subject": ("authentication", "critical"),
    "auth.expired-cert": ("authentication", "high"),
    "auth.spoofed-identity-header": ("authentication", "critical"),
    "auth.method-bypass": ("authentication", "medium"),
    "auth.tls-client-auth-optional": ("authentication", "info"),
    "authz.foreign-identity": ("authorization", "high"),
    "authz.identity-confusion": ("authorization", "high"),
    "input.malformed-json-5xx": ("input_validation", "medium"),
    "input.oversized-body": ("input_validation", "medium"),
    "input.wrong-content-type": ("input_validation", "low"),
    "input.deep-nesting": ("input_validation", "medium"),
    "input.invalid-utf8-5xx": ("input_validation", "low"),
    "rate.no-limit": ("rate_limiting", "high"),
    "rate.no-retry-after": ("rate_limiting", "low"),
    "replay.unsigned-accepted": ("replay", "high"),
    "replay.duplicate-accepted": ("replay", "medium"),
    "replay.stale-timestamp": ("replay", "medium"),
    "exposure.debug-page": ("data_exposure", "high"),
    "exposure.payload-echo": ("data_exposure", "low"),
    "exposure.server-banner": ("data_exposure", "info"),
    "tls.plaintext-http": ("encryption", "high"),
    "tls.legacy-protocol": ("encryption", "medium"),
    "tls.weak-server-cert": ("encryption", "medium"),
    "inventory.url-patterns-leak": ("inventory", "medium"),
}


def test_every_catalog_id_is_registered_with_its_category_and_severity() -> None:
    assert {k: (str(v.category), str(v.severity)) for k, v in CHECKS.items()} == CATALOG


@pytest.mark.parametrize("check_id", sorted(CATALOG))
def test_every_check_names_its_fix(check_id: str) -> None:
    check = CHECKS[check_id]
    assert check.title
    assert any(word in check.remediation for word in ("HOOKSHIELD", "@webhook", "nginx", "DEBUG"))


def test_duplicate_ids_are_refused() -> None:
    class Again(Check):
        id = "auth.no-client-cert"
        category = Category.AUTHENTICATION
        severity = Severity.LOW
        title = "x"
        remediation = "x"

        async def run(self, ctx):
            return []

    with pytest.raises(ValueError, match="duplicate"):
        register(Again)


def test_scoring_deducts_once_per_failed_check_and_caps() -> None:
    results = [
        result("input.wrong-content-type", Outcome.FAILED, count=2),  # low: 5
        result("input.deep-nesting", Outcome.FAILED),  # medium: 10
        result("input.oversized-body", Outcome.PASSED),
        result("replay.unsigned-accepted", Outcome.SKIPPED, reason="needs --signing-secret"),
    ]
    overall, categories = score(results)
    assert categories[Category.INPUT_VALIDATION].score == 85
    assert categories[Category.INPUT_VALIDATION].checks_run == 3
    assert categories[Category.REPLAY].score is None  # every check skipped: no score
    assert categories[Category.REPLAY].checks_skipped == 1
    assert overall == 85
    critical = [*results, result("auth.no-client-cert", Outcome.FAILED)]
    assert score(critical)[0] == 59  # mean of 85 and 60, capped by the critical
    high = [*results, result("rate.no-limit", Outcome.FAILED)]
    assert score(high)[0] == 79


def test_categories_floor_at_zero() -> None:
    results = [
        result(i, Outcome.FAILED)
        for i in ("auth.no-client-cert", "auth.untrusted-cert", "auth.forged-subject")
    ]
    assert score(results)[1][Category.AUTHENTICATION].score == 0


@pytest.mark.parametrize(
    ("value", "letter"),
    [
        (100, "A"),
        (90, "A"),
        (89, "B"),
        (80, "B"),
        (79, "C"),
        (70, "C"),
        (60, "D"),
        (59, "F"),
        (0, "F"),
    ],
)
def test_grades(value: int, letter: str) -> None:
    assert grade(value) == letter


def test_report_orders_findings_by_severity(report: Report) -> None:
    severities = [f.severity.rank for f in report.findings]
    assert severities == sorted(severities, reverse=True)
    assert report.worst is Severity.CRITICAL
