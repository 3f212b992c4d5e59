"""``--format json``: the report shape of docs/scanner-checks.md."""

from __future__ import annotations

import json

from hookshield.scanner.model import Report


def render(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"
