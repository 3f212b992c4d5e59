"""The scanner's values: what a check finds, how a check ended, and the report.

JSON-facing enums are ``StrEnum`` with lowercase values; the report's shape is the contract in
``docs/scanner-checks.md`` (``Report.to_json``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "Category",
    "CategoryScore",
    "CheckResult",
    "Evidence",
    "Finding",
    "Outcome",
    "Report",
    "Severity",
]


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Category(StrEnum):
    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    INPUT_VALIDATION = "input_validation"
    RATE_LIMITING = "rate_limiting"
    REPLAY = "replay"
    DATA_EXPOSURE = "data_exposure"
    ENCRYPTION = "encryption"
    INVENTORY = "inventory"


class Outcome(StrEnum):
    PASSED = "passed"  # ran, found nothing
    FAILED = "failed"  # ran, found something
    SKIPPED = "skipped"  # its inputs were missing (the reason says which)
    INCONCLUSIVE = (
        "inconclusive"  # ran, but the answers prove nothing (baseline refused, throttled)
    )
    ERROR = "error"  # the check broke; the reason says how
    # The target cannot express what the check inspects (TLS checks over plain HTTP, a 429's
    # headers where nothing answers 429): outside the coverage, never a pass.
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What was sent and what came back, trimmed.

    ``control`` is the request that differed only in the property under test, and its answer:
    a claim "accepted because of Y" stands only beside the same request without Y refused.
    """

    request: str
    status: int | None = None
    excerpt: str = ""
    elapsed_ms: float | None = None
    control: Evidence | None = None

    @property
    def answer(self) -> str:
        return "no HTTP answer" if self.status is None else f"HTTP {self.status}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"request": self.request, "status": self.status}
        if self.excerpt:
            data["excerpt"] = self.excerpt
        if self.elapsed_ms is not None:
            data["elapsed_ms"] = round(self.elapsed_ms, 1)
        if self.control is not None:
            data["control"] = self.control.to_json()
        return data


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    category: Category
    severity: Severity
    title: str
    evidence: Evidence
    remediation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": str(self.category),
            "severity": str(self.severity),
            "title": self.title,
            "evidence": self.evidence.to_json(),
            "remediation": self.remediation,
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    category: Category
    severity: Severity
    title: str
    outcome: Outcome
    findings: tuple[Finding, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CategoryScore:
    score: int | None  # None: every check of the category was skipped
    checks_run: int
    checks_skipped: int


def coverage(results: Sequence[CheckResult]) -> tuple[int, int]:
    """Checks run (a verdict: passed or failed) and checks applicable (the target can express
    them; skipped for missing input, inconclusive and errors count as applicable, not run)."""
    run = sum(r.outcome in (Outcome.PASSED, Outcome.FAILED) for r in results)
    return run, sum(r.outcome is not Outcome.NOT_APPLICABLE for r in results)


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a format renders; formats compute nothing."""

    tool_version: str
    target: str
    started_at: dt.datetime
    duration_s: float
    requests_sent: int
    results: tuple[CheckResult, ...]
    score: int
    grade: str
    categories: dict[Category, CategoryScore]
    throttled: int = 0
    burst: tuple[int, float] | None = None  # (requests, seconds) of the rate-limit burst
    # Why the scan proves too little to be graded (the baseline was refused, or coverage is
    # below --min-coverage); the grade is then "incomplete".
    incomplete: str | None = None

    @property
    def checks_run(self) -> int:
        return coverage(self.results)[0]

    @property
    def checks_applicable(self) -> int:
        return coverage(self.results)[1]

    @property
    def coverage_text(self) -> str:
        return f"coverage {self.checks_run}/{self.checks_applicable} checks"

    @property
    def findings(self) -> tuple[Finding, ...]:
        found = [f for r in self.results for f in r.findings]
        return tuple(sorted(found, key=lambda f: (-f.severity.rank, f.id)))

    def with_outcome(self, outcome: Outcome) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.outcome is outcome)

    @property
    def worst(self) -> Severity | None:
        findings = self.findings
        return findings[0].severity if findings else None

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": {"name": "hookshield", "version": self.tool_version},
            "target": self.target,
            "started_at": self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": round(self.duration_s, 2),
            "requests_sent": self.requests_sent,
            "score": self.score,
            "grade": self.grade,
            "coverage": {
                "checks_run": self.checks_run,
                "checks_applicable": self.checks_applicable,
            },
            "incomplete": self.incomplete,
            "categories": {
                str(category): {
                    "score": value.score,
                    "checks_run": value.checks_run,
                    "checks_skipped": value.checks_skipped,
                }
                for category, value in self.categories.items()
            },
            "findings": [f.to_json() for f in self.findings],
            "skipped": [
                {"id": r.id, "reason": r.reason} for r in self.with_outcome(Outcome.SKIPPED)
            ],
            "inconclusive": [
                {"id": r.id, "reason": r.reason} for r in self.with_outcome(Outcome.INCONCLUSIVE)
            ],
            "errors": [{"id": r.id, "reason": r.reason} for r in self.with_outcome(Outcome.ERROR)],
            "not_applicable": [
                {"id": r.id, "reason": r.reason} for r in self.with_outcome(Outcome.NOT_APPLICABLE)
            ],
            "throttled_probes": self.throttled,
            "burst": None
            if self.burst is None
            else {
                "requests": self.burst[0],
                "duration_s": round(self.burst[1], 3),
                "requests_per_s": round(self.burst[0] / self.burst[1], 1)
                if self.burst[1]
                else None,
            },
        }
