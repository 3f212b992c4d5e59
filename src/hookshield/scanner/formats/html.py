"""``--format html``: one self-contained file (no external assets) with grade, bars, findings."""

from __future__ import annotations

from html import escape

from hookshield.scanner.model import Outcome, Report, Severity

_COLOURS = {
    Severity.CRITICAL: "#b91c1c",
    Severity.HIGH: "#dc2626",
    Severity.MEDIUM: "#d97706",
    Severity.LOW: "#0891b2",
    Severity.INFO: "#6b7280",
}
_GRADE = {"A": "#15803d", "B": "#65a30d", "C": "#ca8a04", "D": "#ea580c", "F": "#b91c1c"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#111;max-width:70rem}
.grade{font-size:4rem;font-weight:700;color:#fff;padding:.2rem 1.2rem;border-radius:.5rem;
display:inline-block}
.bar{background:#e5e7eb;border-radius:.25rem;height:1rem;width:20rem;display:inline-block}
.bar span{display:block;height:1rem;border-radius:.25rem;background:#2563eb}
table{border-collapse:collapse;width:100%;margin:1rem 0}
td,th{border-bottom:1px solid #e5e7eb;padding:.4rem;text-align:left;vertical-align:top}
.sev{color:#fff;border-radius:.25rem;padding:.1rem .4rem;font-size:.85rem}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:.2rem}
"""


def _incomplete(report: Report) -> str:
    if not report.incomplete:
        return ""
    return f"<p><strong>Incomplete:</strong> {escape(report.incomplete)}</p>"


def render(report: Report) -> str:
    rows = []
    for category, value in report.categories.items():
        width = 0 if value.score is None else value.score
        label = "not tested" if value.score is None else f"{value.score}/100"
        rows.append(
            f"<tr><td>{escape(str(category))}</td><td><div class=bar><span "
            f"style='width:{width}%'></span></div></td><td>{label}</td></tr>"
        )
    findings = []
    for finding in report.findings:
        colour = _COLOURS[finding.severity]
        evidence = finding.evidence
        findings.append(
            f"<tr><td><span class=sev style='background:{colour}'>{escape(str(finding.severity))}"
            f"</span></td><td><code>{escape(finding.id)}</code><br>{escape(finding.title)}</td>"
            f"<td>{escape(evidence.request)} &rarr; {escape(str(evidence.status))}"
            f"<br><small>{escape(evidence.excerpt[:200])}</small></td>"
            f"<td>{escape(finding.remediation)}</td></tr>"
        )
    others = "".join(
        f"<li><code>{escape(r.id)}</code> {escape(r.outcome.value)}: {escape(r.reason)}</li>"
        for r in report.results
        if r.outcome not in (Outcome.PASSED, Outcome.FAILED)
    )
    colour = _GRADE.get(report.grade, "#111")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>hookshield scan: {escape(report.target)}</title>
<style>{_STYLE}</style></head><body>
<h1>hookshield scan</h1>
<p><code>{escape(report.target)}</code><br>{report.started_at:%Y-%m-%d %H:%M} UTC,
{report.requests_sent} requests in {report.duration_s:.1f} s</p>
<p><span class=grade style='background:{colour}'>{escape(report.grade)}</span>
<strong style='font-size:2rem;margin-left:1rem'>{report.score}/100</strong>
<span style='margin-left:1rem'>{escape(report.coverage_text)}</span></p>
{_incomplete(report)}
<h2>Categories</h2><table>{"".join(rows)}</table>
<h2>Findings ({len(report.findings)})</h2>
<table><tr><th>severity</th><th>check</th><th>evidence</th><th>fix</th></tr>{"".join(findings)}</table>
<h2>Not tested</h2><ul>{others or "<li>Every check ran.</li>"}</ul>
</body></html>
"""
