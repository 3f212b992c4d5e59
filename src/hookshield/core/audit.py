"""The one structured log line per decision, and the spoofing notice.

Lines carry the endpoint, identity, fingerprint, outcome and reason as ``key=value`` text (for
plain log files) and the same fields under ``extra["hookshield"]`` (for JSON formatters). Never
a header value, a body or a secret.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping

from hookshield.core.identity import ClientIdentity
from hookshield.core.redact import active as active_redaction
from hookshield.core.redact import install as install_redaction

__all__ = ["log_decision", "log_spoofing", "will_emit", "write_decision"]

decision_logger = logging.getLogger("hookshield.guard")
source_logger = logging.getLogger("hookshield.source")
# hookshield's loggers redact from the start; Django's app config adds REDACT's keys.
install_redaction()


_BARE = re.compile(r"[A-Za-z0-9._:/@-]+")


def _quoted(value: object) -> str:
    text = str(value)
    # Decision lines repeat the same endpoints, identities, peers and reasons: short values are
    # quoted once; long ones (a hostile certificate's name) are not kept.
    return _quoted_short(text) if len(text) <= 256 else _quote(text)


def _quote(text: str) -> str:
    if _BARE.fullmatch(text):
        return text
    # unicode_escape turns control characters (and backslashes) into escapes: no log injection.
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


_quoted_short = functools.lru_cache(maxsize=1024)(_quote)


def _line(event: str, fields: Mapping[str, object]) -> str:
    return event + "".join([f" {k}={_quoted(v)}" for k, v in fields.items() if v is not None])


class _Line(tuple[str, Mapping[str, object]]):
    """A log message, ``(event, fields)``, rendered when a handler formats it, as ``msg % args``
    is. (A tuple: made in C, which a class of its own with an ``__init__`` is not.)"""

    __slots__ = ()

    def __str__(self) -> str:
        return _line(self[0], self[1])


def will_emit(logger: logging.Logger, level: int) -> bool:
    """Whether a record at ``level`` on ``logger`` would reach a handler that can emit it.

    ``Logger.callHandlers``'s own walk, without the record: the logger's level, then each
    handler up the propagation chain whose level lets the record through and that is not a
    ``NullHandler`` (the standard library's way to say "drop"); with no handler at all, the
    ``lastResort`` handler's level. Handler filters are not consulted (they need the record),
    so a handler whose filter would drop it still counts: never a line lost, at worst one built.
    """
    if not logger.isEnabledFor(level):
        return False
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level and type(handler) is not logging.NullHandler:
                return True
        current = current.parent if current.propagate else None
    last = logging.lastResort
    return not found and last is not None and level >= last.level


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
    # A decision logged at a level nobody handles costs no record (and no field is redacted).
    if will_emit(decision_logger, level):
        write_decision(endpoint, outcome, code, reason, identity, peer, level)


def write_decision(
    endpoint: str,
    outcome: str,
    code: str | None,
    reason: str,
    identity: ClientIdentity | None,
    peer: str,
    level: int,
) -> None:
    """``log_decision`` for a caller that has asked ``will_emit`` already."""
    fields: dict[str, object] = {
        "endpoint": endpoint,
        "outcome": outcome,
        "code": code,
        "identity": identity.name if identity else None,
        "fingerprint": identity.fingerprint if identity else None,
        "peer": peer,
        "reason": reason,
    }
    # Which fields hold text from outside hookshield: the certificate's name always; on a
    # refusal also the reason, which may quote a parser or verifier on what the client sent.
    # The rest are configured names, digests, the socket's peer address and hookshield's words.
    outside = ("identity",) if outcome == "accepted" else ("identity", "reason")
    _emit(decision_logger, level, "webhook_decision", fields, outside)


def log_spoofing(*, source: str, peer: str, why: str) -> None:
    if will_emit(source_logger, logging.WARNING):
        fields: dict[str, object] = {"source": source, "peer": peer, "why": why}
        _emit(source_logger, logging.WARNING, "certificate_headers_ignored", fields, ())


def _emit(
    logger: logging.Logger,
    level: int,
    event: str,
    fields: dict[str, object],
    outside: tuple[str, ...],
) -> None:
    redactor = active_redaction()
    for key in outside:
        value = fields.get(key)
        if isinstance(value, str):
            fields[key] = redactor.text(value)
    # makeRecord + handle is Logger.log without findCaller's stack walk, which would cost more
    # than the rest of the guard on a cache hit; the caller's location says nothing here anyway.
    # The record names the filter that redacted its fields, so that filter (on hookshield's
    # loggers) does not scan it twice; any other, with other keys, still does.
    record = logger.makeRecord(logger.name, level, __file__, 0, _Line((event, fields)), (), None)
    # What ``extra`` would set, without makeRecord's check of each key against the record's.
    record.hookshield = fields
    record.hookshield_redacted = id(redactor)
    logger.handle(record)
