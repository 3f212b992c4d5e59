"""One module per output format; each renders a ``Report`` and computes nothing."""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from hookshield.scanner.model import Report

__all__ = ["OutputFormat", "render"]


class OutputFormat(StrEnum):
    PRETTY = "pretty"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    HTML = "html"

    @property
    def machine_readable(self) -> bool:
        return self is not OutputFormat.PRETTY


def render(
    report: Report,
    fmt: OutputFormat,
    *,
    color: bool = False,
    sarif_location: str = "hookshield-scan.txt",
) -> str:
    from hookshield.scanner.formats import html, json_format, junit, pretty, sarif

    if fmt is OutputFormat.PRETTY:
        return pretty.render(report, color=color)
    if fmt is OutputFormat.JSON:
        return json_format.render(report)
    if fmt is OutputFormat.SARIF:
        return sarif.render(report, location=sarif_location)
    if fmt is OutputFormat.JUNIT:
        return junit.render(report)
    if fmt is OutputFormat.HTML:
        return html.render(report)
    assert_never(fmt)
