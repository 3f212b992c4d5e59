"""What a probe without an HTTP answer proves: a refusal in the handshake, or nothing at all."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable

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


def answering(
    first: int, then: Callable[[], httpx.Response]
) -> tuple[httpx.MockTransport, list[int]]:
    """200 to the ``first`` requests, then what ``then`` answers (or raises); counts them."""
    count = [0]

    def handle(request: httpx.Request) -> httpx.Response:
        count[0] += 1
        return httpx.Response(200, json={}) if count[0] <= first else then()

    return httpx.MockTransport(handle), count


def test_a_target_that_stops_answering_mid_scan_makes_the_scan_incomplete() -> None:
    # nginx answering 502 for an application gone: every probe is "refused", which proves
    # nothing. The baseline sent again after the probes tells.
    def bad_gateway() -> httpx.Response:
        return httpx.Response(502, html="<h1>502 Bad Gateway</h1>")

    transport, _ = answering(1, bad_gateway)
    config = ScanConfig(URL, checks=("auth.no-client-cert", "input.wrong-content-type"))
    report = asyncio.run(run_scan(config, transport=transport))
    assert report.grade == "incomplete"
    assert report.incomplete is not None
    assert "sent again after the probes was refused (502)" in report.incomplete
    # A target that answers as it did at the start is graded.
    transport, _ = answering(10**6, bad_gateway)
    assert asyncio.run(run_scan(config, transport=transport)).incomplete is None


def test_a_burst_nothing_answers_is_sent_once_and_stops() -> None:
    def refused() -> httpx.Response:
        raise refused_connection()

    transport, count = answering(1, refused)  # the baseline, then nothing
    config = ScanConfig(URL, burst=40, checks=("rate.no-limit", "rate.no-retry-after"))
    report = asyncio.run(run_scan(config, transport=transport))
    outcomes = {r.id: (r.outcome, r.reason) for r in report.results}
    for check in config.checks:
        assert outcomes[check][0] is Outcome.INCONCLUSIVE
        assert "no answer" in outcomes[check][1]
    # Each sender stops at its first unanswered delivery, and the second check sends none.
    assert count[0] <= 1 + config.concurrency


def test_a_connection_to_every_address_of_a_host_failing_silently_is_no_answer() -> None:
    from hookshield.scanner.context import _silent

    both = ExceptionGroup("all addresses", [ConnectionRefusedError(111, "refused"), TimeoutError()])
    assert _silent(both)
    mixed = ExceptionGroup(
        "all addresses", [ConnectionRefusedError(111, "refused"), ssl.SSLError()]
    )
    assert not _silent(mixed)  # one address answered, with a TLS alert: a refusal


class CutOff(httpx.AsyncByteStream):
    """A body whose first bytes arrive, then nothing before the read times out."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"ok": tr'
        raise httpx.ReadTimeout("timed out reading the body")


def test_an_answer_whose_body_is_cut_off_keeps_its_status() -> None:
    # The status is the answer: a 200 whose body then stalls is an accepted probe, a finding.
    def accepts_all(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=CutOff())

    config = ScanConfig(URL, checks=("auth.no-client-cert",))
    report = asyncio.run(run_scan(config, transport=httpx.MockTransport(accepts_all)))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.findings[0].evidence.status == 200


def test_what_httpx_raises_for_a_closed_port_is_no_answer() -> None:
    # The chain as httpx really builds it (its error, httpcore's, the socket's).
    from hookshield.scanner.context import _silent

    async def connect() -> BaseException:
        async with httpx.AsyncClient(timeout=5) as client:
            try:
                await client.get("https://127.0.0.1:1/")  # nothing listens on port 1
            except httpx.TransportError as exc:
                return exc
        raise AssertionError("port 1 answered")

    assert _silent(asyncio.run(connect()))
