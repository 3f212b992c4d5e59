"""tls.legacy-protocol against a real TLS 1.0 server that requires a client certificate.

Such a terminator (HAProxy ``verify required``, Envoy, most Go and Java servers) ends a
certificate-less handshake in every version; the probe carries the legitimate certificate, as
every probe does, so the legacy version is what is tested; without one the check says it needs
it rather than pass. The HTTP side is an ``httpx.MockTransport`` (only the baseline goes
there); the handshakes are real, on 127.0.0.1.
"""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Iterator

import httpx
import pytest

from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.model import Outcome
from hookshield.scanner.profiles import ClientFiles
from tests.conftest import TestPki, require_service


def _server_context(pki: TestPki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pki.files("server"))
    context.load_verify_locations(pki.ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
    except (ValueError, ssl.SSLError) as exc:
        require_service(f"this Python/OpenSSL cannot serve TLS 1.0: {exc}")
    return context


@pytest.fixture(scope="module")
def strict_tls10(pki: TestPki) -> Iterator[str]:
    """A TLS server on 127.0.0.1 that speaks TLS 1.0 and up and requires a client certificate."""
    context = _server_context(pki)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return  # closed: the module is done
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass  # a refused handshake, or the scanner hanging up
            finally:
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}/hooks/payments/"
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
        listener.close()
        thread.join(timeout=5)


def _accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


async def test_tls10_behind_a_required_client_certificate_is_found(
    strict_tls10: str, pki: TestPki
) -> None:
    config = ScanConfig(
        url=strict_tls10,
        legit=ClientFiles(*pki.files("allowed")),
        checks=("tls.legacy-protocol",),
    )
    report = await run_scan(config, transport=httpx.MockTransport(_accepted))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED, result.reason
    requests = [f.evidence.request for f in result.findings]
    assert requests == ["TLSv1 handshake", "TLSv1_1 handshake"]
    assert [f.evidence.excerpt for f in result.findings] == ["TLSv1", "TLSv1.1"]


async def test_without_the_certificate_it_says_what_it_needs(strict_tls10: str) -> None:
    # Every handshake without a certificate ends here, the current ones too: no verdict.
    config = ScanConfig(url=strict_tls10, checks=("tls.legacy-protocol",))
    report = await run_scan(config, transport=httpx.MockTransport(_accepted))
    (result,) = report.results
    assert result.outcome is Outcome.SKIPPED
    assert "--cert" in result.reason
