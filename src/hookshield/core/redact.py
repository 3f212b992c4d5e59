"""A ``logging.Filter`` that redacts secrets from messages, arguments, extra fields and tracebacks.

What it removes:

- values of sensitive keys (the built-in list plus ``REDACT``), as ``key=value``, ``key: value``
  or JSON ``"key": "value"`` in text, and as keys of dicts in arguments and extra fields;
- well-known secret shapes anywhere: Luhn-valid card numbers, ``Bearer`` tokens, Standard
  Webhooks secrets (``whsec_`` / ``whsk_``), AWS access key ids, PEM private key blocks.

It is attached to hookshield's own loggers by default, and can be put on any logger or handler::

    LOGGING = {..., "filters": {"redact": {"()": "hookshield.core.redact.RedactingFilter",
                                           "keys": ["card_number"]}}, ...}

Work per record is bounded: text above ``MAX_TEXT`` characters is cut before it is scanned.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_KEYS",
    "HOOKSHIELD_LOGGERS",
    "RedactingFilter",
    "active",
    "install",
    "redact_text",
    "without_credentials",
]

MAX_TEXT = 64 * 1024
MASK = "[REDACTED]"
DEFAULT_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "private_key",
        "card_number",
        "cvv",
        "cvc",
        "webhook-signature",
        "x-hookshield-proxy-secret",
        "signing_secrets",
        "proxy_secret",
    }
)
HOOKSHIELD_LOGGERS = (
    "hookshield",
    "hookshield.guard",
    "hookshield.inventory",
    "hookshield.source",
    "hookshield.revocation",
    "hookshield.ratelimit",
    "hookshield.replay",
)

# A URL's whole user info, up to the authority's last "@": redis://:password@host,
# https://user:token@host, https://TOKEN@host (a bare token), https://user:p@ss@host.
# A match starts only where a run of scheme characters starts: text a client chooses (a path
# in Django's "Not Found" line) like "a.a.a.a..." would otherwise be scanned again from each
# "a", quadratic in its length. The run's leading digits, dots, pluses and dashes ("1.https://",
# "10.0.0.5-redis://") are kept as they are, before the scheme.
_URL_CREDENTIALS = re.compile(r"(?i)(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*://)[^\s/?#]*@")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        "[REDACTED:private-key]",
    ),
    (re.compile(r"\b(?:whsec|whsk)_[A-Za-z0-9+/=]+"), "[REDACTED:webhook-secret]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer [REDACTED]"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "[REDACTED:aws-key]"),
    (_URL_CREDENTIALS, r"\1[REDACTED]@"),
)
# Word boundaries keep hex digests and identifiers (fingerprints, ids) from looking like cards.
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return "[REDACTED:card]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group()


def _key_pattern(keys: Iterable[str]) -> re.Pattern[str]:
    names = "|".join(sorted((re.escape(k) for k in keys), key=len, reverse=True))
    # key=value / key: value / "key": "value" (the value up to a separator or closing quote)
    return re.compile(
        rf"""(?i)(["']?\b(?:{names})\b["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}}\]]+)"""
    )


_NOT_DIGITS = str.maketrans("", "", "0123456789")
_SHAPE_MARKERS = ("private key", "whsec_", "whsk_", "bearer", "akia", "asia", "@")


def redact_text(
    text: str, keys: frozenset[str] = DEFAULT_KEYS, key_pattern: re.Pattern[str] | None = None
) -> str:
    """``text`` with secrets masked; most log lines hold none and cost a few substring tests."""
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + " [TRUNCATED]"
    lowered = text.lower()
    shapes = any(marker in lowered for marker in _SHAPE_MARKERS)
    named = any(key in lowered for key in keys)
    digits = len(text) - len(text.translate(_NOT_DIGITS)) >= 13
    if not (shapes or named or digits):
        return text
    if shapes:
        for pattern, mask in _PATTERNS:
            text = pattern.sub(mask, text)
    if digits:
        text = _CARD.sub(_card, text)
    if named:
        text = (key_pattern or _key_pattern(keys)).sub(lambda m: m.group(1) + MASK, text)
    return text


def without_credentials(url: str, mask: str = "[REDACTED]") -> str:
    """``url`` (or any text holding URLs) with the user info of each URL masked."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{mask}@", url)


class RedactingFilter(logging.Filter):
    """Redacts in place and lets every record through."""

    def __init__(self, keys: Iterable[str] = (), name: str = "") -> None:
        super().__init__(name)
        self.keys = frozenset(k.lower() for k in (*DEFAULT_KEYS, *keys))
        self._key_pattern = _key_pattern(self.keys)
        # Log lines repeat the same short texts (a caller's name, a reason): remember answers.
        self._short_texts = functools.lru_cache(maxsize=1024)(self._redact)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "hookshield_redacted", None) == id(self):
            return True  # built by hookshield's audit from fields this filter already redacted
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed format: keep what there is, redacted
            message = f"{record.msg} {record.args}"
        record.msg = self.text(message)
        record.args = ()
        for attr in set(vars(record)) - _STANDARD_ATTRS:
            setattr(record, attr, self._value(getattr(record, attr), depth=0))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # Formatters print exc_text when it is set; the exception object itself (whose message
        # may hold a secret) goes, so no handler can render it unredacted.
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.text(record.stack_info)
        return True

    def text(self, text: str) -> str:
        return self._short_texts(text) if len(text) <= 256 else self._redact(text)

    def _redact(self, text: str) -> str:
        return redact_text(text, self.keys, self._key_pattern)

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > 8:
            return "[REDACTED:too-deep]"
        if isinstance(value, dict):
            return {
                k: MASK
                if isinstance(k, str) and k.lower() in self.keys
                else self._value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self._value(v, depth + 1) for v in value)
        if isinstance(value, bytes):
            return self._value(value.decode("utf-8", "replace"), depth + 1)
        return value


_active = RedactingFilter()


def active() -> RedactingFilter:
    """The filter on hookshield's loggers (its keys are the defaults plus ``REDACT``)."""
    return _active


def install(keys: Iterable[str] = ()) -> RedactingFilter:
    """Put one filter (with ``keys`` on top of the defaults) on each of hookshield's loggers."""
    global _active
    new = _active = RedactingFilter(keys)
    for name in HOOKSHIELD_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
            logger.removeFilter(old)
        logger.addFilter(new)
    return new
