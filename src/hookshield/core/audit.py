"""The one structured log line per decision, and the spoofing notice.

Lines carry the endpoint, identity, fingerprint, outcome and reason as ``key=value`` text (for
plain log files) and the same fields under ``extra["hookshield"]`` (for JSON formatters). Never
a header value, a body or a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hookshield.core.identity import ClientIdentity

__all__ = ["log_decision", "log_spoofing"]

decision_logger = logging.getLogger("hookshield.guard")
source_logger = logging.getLogger("hookshield.source")


def _quoted(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-._:/@" for c in text):
        return text
    # unicode_escape turns control characters (and backslashes) into escapes: no log injection.
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


def _line(event: str, fields: Mapping[str, object]) -> str:
    return event + "".join(f" {k}={_quoted(v)}" for k, v in fields.items() if v is not None)


def log_decision(
    *,
    endpoint: str,
    outcome: str,
    code: str | None,
    reason: str,
    identity: ClientIdentity | None,
    peer: str,
    level: int = logging.INFO,
) -> None:
    fields: dict[str, object] = {
        "endpoint": endpoint,
        "outcome": outcome,
        "code": code,
        "identity": identity.name if identity else None,
        "fingerprint": identity.fingerprint if identity else None,
        "peer": peer,
        "reason": reason,
    }
    if decision_logger.isEnabledFor(level):
        decision_logger.log(level, _line("webhook_decision", fields), extra={"hookshield": fields})


def log_spoofing(*, source: str, peer: str, why: str) -> None:
    fields = {"source": source, "peer": peer, "why": why}
    source_logger.warning(
        _line("certificate_headers_ignored", fields), extra={"hookshield": fields}
    )
