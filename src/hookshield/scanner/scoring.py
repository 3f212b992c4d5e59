"""Score and grade, per the contract in docs/scanner-checks.md."""

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

# A failed check at these severities caps the overall score (grade F, grade C at best), however
# well the other categories score.
_CAPS = ((Severity.CRITICAL, 59), (Severity.HIGH, 79))


def _category_score(mine: Sequence[CheckResult]) -> CategoryScore:
    ran = [r for r in mine if r.outcome in (Outcome.PASSED, Outcome.FAILED)]
    skipped = len(mine) - len(ran)
    value = None
    if ran:
        # One deduction per check that found something, however many probes it fired:
        # ten forged-header styles are one abuse path.
        deductions = sum(DEDUCTION[r.severity] for r in ran if r.outcome is Outcome.FAILED)
        value = max(0, 100 - deductions)
    return CategoryScore(value, len(ran), skipped)


def _capped(overall: int, results: Sequence[CheckResult]) -> int:
    severities = {r.severity for r in results if r.outcome is Outcome.FAILED}
    for severity, cap in _CAPS:
        if severity in severities:
            return min(overall, cap)
    return overall


def score(results: Sequence[CheckResult]) -> tuple[int, dict[Category, CategoryScore]]:
    categories: dict[Category, CategoryScore] = {}
    for category in Category:
        mine = [r for r in results if r.category is category]
        if mine:
            categories[category] = _category_score(mine)
    scored = [c.score for c in categories.values() if c.score is not None]
    overall = round(sum(scored) / len(scored)) if scored else 0
    return _capped(overall, results), categories


def grade(value: int) -> str:
    for threshold, letter in ((90, "A"), (80, "B"), (70, "C"), (60, "D")):
        if value >= threshold:
            return letter
    return "F"
