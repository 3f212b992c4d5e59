"""What a probe without an HTTP answer proves: a refusal in the handshake, or nothing at all."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hookshield.scanner import ScanConfig, Unreachable, run_scan
from hookshield.scanner.model import Outcome

URL = "https://hooks.example.test/hooks/"


def failing(exc: Exception) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handle)


def refused_connection() -> httpx.ConnectError:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as cause:
        try:
            raise httpx.ConnectError("All connection attempts failed") from cause
        except httpx.ConnectError as wrapped:
            return wrapped


@pytest.mark.parametrize(
    "exc",
    [refused_connection(), httpx.ConnectTimeout("timed out"), httpx.ReadTimeout("timed out")],
    ids=["refused", "connect-timeout", "read-timeout"],
)
def test_a_baseline_nothing_answers_is_an_unreachable_target(exc: Exception) -> None:
    config = ScanConfig(URL, checks=("auth.no-client-cert",))
    with pytest.raises(Unreachable):
        asyncio.run(run_scan(config, transport=failing(exc)))


def test_a_baseline_refused_in_the_handshake_is_reported_not_unreachable() -> None:
    # A wrong client certificate: the terminator answered, with a TLS alert. The report says
    # why nothing could be compared, and the scan is incomplete rather than unreachable.
    alert = httpx.ConnectError("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    config = ScanConfig(URL, checks=("auth.no-client-cert", "input.wrong-content-type"))
    report = asyncio.run(run_scan(config, transport=failing(alert)))
    assert report.incomplete is not None
    assert "TLSV1_ALERT_UNKNOWN_CA" in report.incomplete
    assert report.grade == "incomplete"
    outcomes = {r.id: r.outcome for r in report.results}
    assert outcomes["input.wrong-content-type"] is Outcome.INCONCLUSIVE  # compared with nothing
    assert not any(r.findings for r in report.results)
