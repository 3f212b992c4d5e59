"""The redaction filter, and the places where the planted secrets are pushed at the logs."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hookshield.core import redact
from hookshield.core.audit import log_decision
from hookshield.core.redact import (
    DEFAULT_KEYS,
    HOOKSHIELD_LOGGERS,
    RedactingFilter,
    install,
    redact_text,
    without_credentials,
)
from tests.conftest import PLANTED

PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\n" + PLANTED["private_key"] + "\n-----END PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "gone", "mask"),
    [
        (f"charged card {PLANTED['card']} ok", PLANTED["card"], "[REDACTED:card]"),
        (f"card={PLANTED['card_digits']}", PLANTED["card_digits"], "[REDACTED:card]"),
        (f"secret {PLANTED['whsec']}", PLANTED["whsec"], "[REDACTED:webhook-secret]"),
        (f"Authorization: Bearer {PLANTED['bearer']}", PLANTED["bearer"], "[REDACTED]"),
        (f"key id {PLANTED['aws']} used", PLANTED["aws"], "[REDACTED:aws-key]"),
        (f"pem {PRIVATE_KEY} end", PLANTED["private_key"], "[REDACTED:private-key]"),
        (
            json.dumps({"password": PLANTED["redact_key_value"]}),
            PLANTED["redact_key_value"],
            "[REDACTED]",
        ),
        (f"token={PLANTED['redact_key_value']}&x=1", PLANTED["redact_key_value"], "[REDACTED]"),
    ],
)
def test_secret_shapes_and_keys_are_masked(text: str, gone: str, mask: str) -> None:
    redacted = redact_text(text)
    assert gone not in redacted
    assert mask in redacted


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123 shipped",  # 13 digits, not Luhn-valid
        "fingerprint=70f4f7fd655ccd7face02746fc5067416bdd89198807715f8b2c152a44f59fdc",
        "spiffe://corp.example/payments-gateway peer=127.0.0.1",
        "tokenizer=on",  # a key name inside a longer word
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_luhn_is_checked() -> None:
    assert "[REDACTED:card]" in redact_text("4111-1111-1111-1111")
    assert redact_text("4111-1111-1111-1112") == "4111-1111-1111-1112"


def test_long_text_is_cut_before_scanning() -> None:
    assert redact_text("x" * 100_000).endswith("[TRUNCATED]")


def record(msg: Any, *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("app", logging.WARNING, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_the_filter_covers_message_args_extras_and_tracebacks() -> None:
    f = RedactingFilter(keys=["card_number", "X-Api-Key"])
    rec = record(
        "charge %s with %r",
        PLANTED["card"],
        {"card_number": "5555"},
        payload={"card_number": PLANTED["card_digits"], "nested": [PLANTED["whsec"]]},
        note=PLANTED["aws"],
    )
    try:
        raise ValueError(f"upstream said Bearer {PLANTED['bearer']}")
    except ValueError:
        import sys

        rec.exc_info = sys.exc_info()
    assert f.filter(rec) is True
    rendered = logging.Formatter("%(message)s").format(rec) + repr(vars(rec))
    for name in ("card", "card_digits", "whsec", "aws", "bearer"):
        assert PLANTED[name] not in rendered
    assert "'5555'" not in rendered
    assert rec.payload["card_number"] == "[REDACTED]"  # type: ignore[attr-defined]


def test_configured_keys_add_to_the_defaults() -> None:
    f = RedactingFilter(keys=["x-api-key"])
    assert "authorization" in f.keys
    assert "x-api-key" in f.keys
    assert f.keys >= DEFAULT_KEYS
    rec = record("headers: x-api-key=%s", PLANTED["redact_key_value"])
    f.filter(rec)
    assert PLANTED["redact_key_value"] not in rec.getMessage()


def test_hookshield_loggers_redact_by_default(caplog: pytest.LogCaptureFixture) -> None:
    # Every logger hookshield's code names is in the list (a parent's filter skips children).
    source = Path(redact.__file__).parents[1]
    named = {
        name
        for path in source.rglob("*.py")
        for name in re.findall(r'getLogger\("(hookshield[\w.]*)"\)', path.read_text())
    }
    assert "hookshield.inventory" in named
    assert named <= set(HOOKSHIELD_LOGGERS)
    caplog.set_level(logging.DEBUG, logger="hookshield")
    for name in HOOKSHIELD_LOGGERS:
        logging.getLogger(name).warning(
            "leaked %s %s",
            PLANTED["card"],
            PLANTED["whsec"],
            extra={"body": {"password": PLANTED["redact_key_value"]}},
        )
    assert len(caplog.records) == len(HOOKSHIELD_LOGGERS)
    for rec in caplog.records:
        assert PLANTED["card"] not in rec.getMessage()
        assert PLANTED["whsec"] not in rec.getMessage()
        assert PLANTED["redact_key_value"] not in repr(rec.body)  # type: ignore[attr-defined]


def test_passwords_in_urls() -> None:
    text = "storage redis://:s3cret-pw@redis.internal:6379/0 and https://bot:tok3n@h.example/x"
    assert redact_text(text) == (
        "storage redis://[REDACTED]@redis.internal:6379/0 and https://[REDACTED]@h.example/x"
    )
    assert without_credentials("rediss://user:s3cret-pw@r:6380") == "rediss://[REDACTED]@r:6380"
    assert without_credentials("redis://r:6379/0") == "redis://r:6379/0"
    assert redact_text("mail ops@example.com at 10:30") == "mail ops@example.com at 10:30"
    assert redact_text("via git+ssh://me:pw@h and (x.y://t@h)") == (
        "via git+ssh://[REDACTED]@h and (x.y://[REDACTED]@h)"
    )
    # A run of scheme characters that starts with a digit, a dot, a plus or a dash.
    for before in ("1.", "10.0.0.5-", "-", "+"):
        text = f"see {before}redis://:s3cret-pw@h"
        assert redact_text(text) == f"see {before}redis://[REDACTED]@h"


def test_a_url_scheme_is_tried_once_per_run_of_scheme_characters() -> None:
    # The pattern may start only at the first character of a run: a client's "a.a.a...@" is
    # then scanned once, not once more from each "a" (quadratic; 32 KB took 4 s).
    pattern = redact._URL_CREDENTIALS
    text = "a.b-c+d.e://user:pw@host"
    assert pattern.match(text, 0) is not None
    assert all(pattern.match(text, start) is None for start in range(1, len(text)))
    for hostile in ("a." * 2000 + "@", "1." * 2000 + "@", "1a" * 2000 + "@"):
        assert redact_text(hostile) == hostile


def test_usable_on_any_logger_through_dict_config() -> None:
    import logging.config

    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {
                "redact": {"()": "hookshield.core.redact.RedactingFilter", "keys": ["iban"]}
            },
            "loggers": {"billing.app": {"filters": ["redact"]}},
        }
    )
    logger = logging.getLogger("billing.app")
    (f,) = logger.filters
    assert isinstance(f, RedactingFilter)
    rec = record("iban=%s card %s", "DE89370400440532013000", PLANTED["card"])
    f.filter(rec)
    assert "DE89370400440532013000" not in rec.getMessage()
    # The suite-wide scan checks the logger's own output too.
    logger.warning("charged %s", PLANTED["card"])
    logger.filters.clear()


def test_a_handlers_own_filter_still_redacts_decision_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # hookshield's logger filter skips the decision records it redacted; a handler's filter with
    # keys of its own must not.
    caplog.set_level(logging.INFO, logger="hookshield")
    caplog.handler.addFilter(RedactingFilter(["peer"]))
    try:
        log_decision(
            endpoint="payments",
            outcome="rejected",
            code=None,
            reason="test",
            identity=None,
            peer="192.0.2.7",
        )
    finally:
        caplog.handler.filters.clear()
    (rec,) = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert "peer=[REDACTED]" in rec.getMessage()
    assert "192.0.2.7" not in rec.getMessage()


def test_install_replaces_the_filter_with_the_configured_keys() -> None:
    try:
        active = install(["merchant_secret"])
        assert all(
            logging.getLogger(n).filters.count(active) == 1
            for n in ("hookshield", "hookshield.guard")
        )
        assert "merchant_secret" in active.keys
    finally:
        install()


def test_leak_probe() -> None:
    """Logs a planted secret unfiltered only when test_the_log_scan_catches_a_leak asks for it."""
    if os.environ.get("HOOKSHIELD_LEAK_PROBE") == "1":
        logging.getLogger("unfiltered.app").warning("oops %s", PLANTED["aws"])


def test_the_log_scan_catches_a_leak() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{__file__}::test_leak_probe",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "HOOKSHIELD_LEAK_PROBE": "1"},
    )
    assert result.returncode != 0
    assert "planted secrets reached the logs: ['aws']" in result.stdout
