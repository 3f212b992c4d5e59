"""Score and grade, per the contract in shared/design/scanner-checks.md."""

from __future__ import annotations

from collections.abc import Sequence

from hookshield.scanner.model import Category, CategoryScore, CheckResult, Outcome, Severity

__all__ = ["DEDUCTION", "grade", "score"]

DEDUCTION = {
    Severity.CRITICAL: 40,
    Severity.HIGH: 25,
    Severity.MEDIUM: 10,
    Severity.LOW: 5,
    Severity.INFO: 0,
}


def score(results: Sequence[CheckResult]) -> tuple[int, dict[Category, CategoryScore]]:
    categories: dict[Category, CategoryScore] = {}
    for category in Category:
        mine = [r for r in results if r.category is category]
        if not mine:
            continue
        ran = [r for r in mine if r.outcome in (Outcome.PASSED, Outcome.FAILED)]
        skipped = len(mine) - len(ran)
        value = None
        if ran:
            # One deduction per check that found something, however many probes it fired:
            # ten forged-header styles are one abuse path.
            deductions = sum(DEDUCTION[r.severity] for r in ran if r.outcome is Outcome.FAILED)
            value = max(0, 100 - deductions)
        categories[category] = CategoryScore(value, len(ran), skipped)
    scored = [c.score for c in categories.values() if c.score is not None]
    overall = round(sum(scored) / len(scored)) if scored else 0
    severities = {r.severity for r in results if r.outcome is Outcome.FAILED}
    if Severity.CRITICAL in severities:
        overall = min(overall, 59)
    elif Severity.HIGH in severities:
        overall = min(overall, 79)
    return overall, categories


def grade(value: int) -> str:
    for threshold, letter in ((90, "A"), (80, "B"), (70, "C"), (60, "D")):
        if value >= threshold:
            return letter
    return "F"
