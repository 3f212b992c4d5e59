"""One shared Report for the format tests, built from the registry (no network)."""

from __future__ import annotations

import datetime as dt

import pytest

from hookshield.scanner.model import CheckResult, Evidence, Finding, Outcome, Report
from hookshield.scanner.registry import CHECKS
from hookshield.scanner.scoring import grade, score


def result(
    check_id: str,
    outcome: Outcome,
    *,
    reason: str = "",
    evidence: Evidence | None = None,
    count: int = 1,
) -> CheckResult:
    cls = CHECKS[check_id]
    findings: tuple[Finding, ...] = ()
    if outcome is Outcome.FAILED:
        check = cls.__new__(cls)
        findings = tuple(
            check.finding(
                evidence or Evidence(f"POST /hooks/ (probe {i})", 200, '{"ok": "<b>&</b>"}', 12.5)
            )
            for i in range(count)
        )
    return CheckResult(check_id, cls.category, cls.severity, cls.title, outcome, findings, reason)


@pytest.fixture
def report() -> Report:
    results = [
        result("auth.no-client-cert", Outcome.FAILED),
        result("auth.spoofed-identity-header", Outcome.FAILED, count=3),
        result("input.wrong-content-type", Outcome.FAILED),
        result("exposure.server-banner", Outcome.FAILED),
        result(
            "tls.legacy-protocol",
            Outcome.FAILED,
            evidence=Evidence("TLSv1 handshake", None, "TLSv1"),
        ),
        result("auth.expired-cert", Outcome.SKIPPED, reason="needs --mint-ca"),
        result("replay.unsigned-accepted", Outcome.INCONCLUSIVE, reason="throttled"),
        result("rate.no-limit", Outcome.ERROR, reason="RuntimeError: broken"),
        *(
            result(i, Outcome.PASSED)
            for i in ("authz.foreign-identity", "inventory.url-patterns-leak")
        ),
    ]
    overall, categories = score(results)
    return Report(
        tool_version="9.9.9",
        target="https://hooks.example.test:8443/hooks/payments/",
        started_at=dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC),
        duration_s=1.25,
        requests_sent=42,
        results=tuple(sorted(results, key=lambda r: r.id)),
        score=overall,
        grade=grade(overall),
        categories=categories,
        throttled=1,
    )
