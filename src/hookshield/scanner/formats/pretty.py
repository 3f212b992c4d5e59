"""``--format pretty`` (the terminal default): summary, findings by severity, skipped, fixes."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hookshield.scanner.model import Evidence, Outcome, Report, Severity

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_GRADE_STYLE = {"A": "bold green", "B": "green", "C": "yellow", "D": "red", "F": "bold red"}
# Control characters a target may put in what it answers (an escape sequence in an excerpt would
# move the cursor or recolour the terminal), shown as the replacement character.
_CONTROLS = dict.fromkeys([*range(0x20), 0x7F, *range(0x80, 0xA0)], "\ufffd")
del _CONTROLS[ord("\n")], _CONTROLS[ord("\t")]


def _plain(text: str) -> str:
    return text.translate(_CONTROLS)


def render(report: Report, *, color: bool = False) -> str:
    out = io.StringIO()
    # What the target answered (headers, excerpts, reasons) is printed as it is: rich's markup
    # and emoji codes would read "[/x]" in a Server header as a closing tag, and fail the scan.
    console = Console(
        file=out,
        force_terminal=color,
        no_color=not color,
        width=110,
        highlight=False,
        markup=False,
        emoji=False,
    )
    console.print(_summary(report))
    console.print(_categories(report))
    if report.findings:
        console.print(_findings(report))
    else:
        console.print(Text("No findings.", style="green"))
    _print_not_run(console, report)
    if report.findings:
        _print_remediation(console, report)
    return out.getvalue()


def _summary(report: Report) -> Text:
    return Text.assemble(
        ("hookshield scan ", "bold"),
        (_plain(report.target), "bold"),
        "\n",
        "score ",
        (f"{report.score}/100", "bold"),
        "  grade ",
        (report.grade, _GRADE_STYLE.get(report.grade, "bold")),
        "  ",
        report.coverage_text,
        "  ",
        f"{report.requests_sent} requests in {report.duration_s:.1f} s",
        f" ({report.throttled} throttled)" if report.throttled else "",
        f", burst {report.burst[0]} in {report.burst[1]:.2f} s" if report.burst else "",
        ("\nincomplete: " + _plain(report.incomplete), "bold red") if report.incomplete else "",
    )


def _categories(report: Report) -> Table:
    categories = Table(title="Categories", show_header=True, header_style="bold")
    for column in ("category", "score", "run", "skipped"):
        categories.add_column(column)
    for category, value in report.categories.items():
        categories.add_row(
            str(category),
            "-" if value.score is None else str(value.score),
            str(value.checks_run),
            str(value.checks_skipped),
        )
    return categories


def _findings(report: Report) -> Table:
    table = Table(title="Findings", show_header=True, header_style="bold", show_lines=False)
    for column in ("severity", "check", "evidence"):
        table.add_column(column)
    for finding in report.findings:
        table.add_row(
            Text(str(finding.severity), style=_STYLE[finding.severity]),
            f"{finding.id}\n{finding.title}",
            _evidence(finding.evidence),
        )
    return table


def _evidence(evidence: Evidence) -> str:
    # No status means no HTTP answer: the excerpt (a transport error, a TLS version) says why.
    answer = f" -> {evidence.status}" if evidence.status is not None else ""
    detail = f"\n{evidence.excerpt[:160]}" if evidence.status is None and evidence.excerpt else ""
    return _plain(f"{evidence.request}{answer}{detail}")


def _print_not_run(console: Console, report: Report) -> None:
    """The checks that did not pass or fail, with the reason each gave."""
    for outcome in (
        Outcome.SKIPPED,
        Outcome.INCONCLUSIVE,
        Outcome.ERROR,
        Outcome.NOT_APPLICABLE,
    ):
        results = report.with_outcome(outcome)
        if results:
            label = outcome.value.replace("_", " ").capitalize()
            console.print(Text(f"{label} checks", style="bold"))
            for result in results:
                console.print(f"  {result.id}: {_plain(result.reason)}")


def _print_remediation(console: Console, report: Report) -> None:
    """One remediation per check, however many findings it made."""
    console.print(Text("Remediation", style="bold"))
    seen = set()
    for finding in report.findings:
        if finding.id not in seen:
            seen.add(finding.id)
            console.print(f"  {finding.id}: {finding.remediation}")
