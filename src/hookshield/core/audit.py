"""The one structured log line per decision, and the spoofing notice.

Lines carry the endpoint, identity, fingerprint, outcome and reason as ``key=value`` text (for
plain log files) and the same fields under ``extra["hookshield"]`` (for JSON formatters). Never
a header value, a body or a secret.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from hookshield.core.identity import ClientIdentity

__all__ = ["log_decision", "log_spoofing"]

decision_logger = logging.getLogger("hookshield.guard")
source_logger = logging.getLogger("hookshield.source")


_BARE = re.compile(r"[A-Za-z0-9._:/@-]+")


def _quoted(value: object) -> str:
    text = str(value)
    if _BARE.fullmatch(text):
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
    _emit(decision_logger, level, "webhook_decision", fields)


def log_spoofing(*, source: str, peer: str, why: str) -> None:
    fields: dict[str, object] = {"source": source, "peer": peer, "why": why}
    _emit(source_logger, logging.WARNING, "certificate_headers_ignored", fields)


def _emit(logger: logging.Logger, level: int, event: str, fields: dict[str, object]) -> None:
    # makeRecord + handle is Logger.log without findCaller's stack walk, which would cost more
    # than the rest of the guard on a cache hit; the caller's location says nothing here anyway.
    if logger.isEnabledFor(level):
        record = logger.makeRecord(
            logger.name,
            level,
            __file__,
            0,
            _line(event, fields),
            (),
            None,
            extra={"hookshield": fields},
        )
        logger.handle(record)
