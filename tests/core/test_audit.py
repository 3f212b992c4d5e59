"""The decision log builds a record exactly when a handler can emit it."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import pytest

from hookshield.core import audit
from hookshield.core.audit import log_decision, will_emit
from hookshield.core.pipeline import Endpoint, Guard, Webhook
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust, parse_networks
from hookshield.core.sources import Inbound, build_source
from hookshield.core.verify import Verifier
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki


@contextlib.contextmanager
def isolated() -> Iterator[logging.Logger]:
    """A logger ``isolated.child`` at INFO, under a parent that does not propagate.

    Both start without handlers and end as found. (Entered in the test body: pytest attaches
    its capture handlers to non-propagating loggers once a test's fixtures are set up.)
    """
    parent = logging.getLogger("hookshield-test-isolated")
    child = logging.getLogger("hookshield-test-isolated.child")
    saved = [(lg, lg.propagate, lg.level, list(lg.handlers)) for lg in (parent, child)]
    for logger in (parent, child):
        logger.handlers.clear()
    parent.propagate = False
    parent.setLevel(logging.NOTSET)
    child.setLevel(logging.INFO)
    yield child
    for logger, propagate, level, handlers in saved:
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def test_a_null_handler_emits_nothing() -> None:
    with isolated() as child:
        child.parent.addHandler(logging.NullHandler())  # type: ignore[union-attr]
        assert not will_emit(child, logging.INFO)
        assert not will_emit(child, logging.ERROR)


def test_a_handler_up_the_chain_emits_at_its_level() -> None:
    with isolated() as child:
        handler = logging.StreamHandler(io.StringIO())
        handler.setLevel(logging.WARNING)
        child.parent.addHandler(handler)  # type: ignore[union-attr]
        assert not will_emit(child, logging.INFO)
        assert will_emit(child, logging.WARNING)


def test_the_logger_level_comes_first() -> None:
    with isolated() as child:
        child.addHandler(logging.StreamHandler(io.StringIO()))
        assert not will_emit(child, logging.DEBUG)
        assert will_emit(child, logging.INFO)


def test_without_a_handler_on_the_way_the_last_resort_decides() -> None:
    # The parent does not propagate, so the root's handlers are never reached; with no handler
    # on the way the standard library's last resort (WARNING, to stderr) emits the record.
    with isolated() as child:
        assert not will_emit(child, logging.INFO)
        assert will_emit(child, logging.WARNING)


@pytest.fixture
def built() -> Iterator[list[logging.LogRecord]]:
    """Every record the logging module builds while the test runs."""
    records: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        records.append(record)
        return record

    logging.setLogRecordFactory(counting)
    yield records
    logging.setLogRecordFactory(factory)


@contextlib.contextmanager
def guard_logger() -> Iterator[logging.Logger]:
    """``hookshield.guard`` at INFO, its handlers (none propagated) the test's alone."""
    logger = audit.decision_logger
    saved = logger.propagate, logger.level, list(logger.handlers)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger
    logger.propagate, logger.level, logger.handlers[:] = saved[0], saved[1], saved[2]


def decide(outcome: str) -> None:
    log_decision(
        endpoint="payments",
        outcome=outcome,
        code=None,
        reason="matched",
        identity=None,
        peer="127.0.0.1",
        level=logging.INFO if outcome == "accepted" else logging.WARNING,
    )


def test_no_record_is_built_for_a_line_no_handler_emits(built: list[logging.LogRecord]) -> None:
    with guard_logger() as logger:
        logger.addHandler(logging.NullHandler())
        decide("accepted")
        decide("rejected")
    assert built == []


def test_every_decision_a_handler_can_emit_is_logged(built: list[logging.LogRecord]) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    with guard_logger() as logger:
        logger.addHandler(handler)
        decide("accepted")  # INFO: below the only handler's level
        decide("rejected")
    assert [r.levelno for r in built] == [logging.WARNING]
    assert stream.getvalue().count("webhook_decision") == 1


def test_accepted_deliveries_at_a_lowered_level(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    guard = Guard(
        source=build_source("nginx"),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"])),
        verifier=Verifier([pki.root.certificate]),
        endpoints={"payments": Endpoint("payments", Allowlist.parse([ALLOWED]))},
        accepted_level=logging.DEBUG,
    )

    def deliver(cert: object) -> object:
        meta = {
            "HTTP_X_SSL_CLIENT_CERT": encodings.nginx_escaped(cert),  # type: ignore[arg-type]
            "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS",
            "CONTENT_TYPE": "application/json",
        }
        return guard.check(
            Inbound(peer="127.0.0.1", meta=meta, read=io.BytesIO(b"{}").read), "payments"
        )

    caplog.set_level(logging.INFO, logger="hookshield")
    assert isinstance(deliver(pki.allowed.certificate), Webhook)
    assert not isinstance(deliver(pki.other.certificate), Webhook)
    # At INFO the accepted line (now DEBUG) is not built; the refusal still is, at WARNING.
    levels = [r.levelno for r in caplog.records if r.name == "hookshield.guard"]
    assert levels == [logging.WARNING]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="hookshield")
    assert isinstance(deliver(pki.allowed.certificate), Webhook)
    (record,) = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert record.levelno == logging.DEBUG
    assert record.hookshield["outcome"] == "accepted"  # type: ignore[attr-defined]
