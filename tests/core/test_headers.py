"""The header catalogue: the sources' names are in it, and what derives from it agrees."""

from __future__ import annotations

from pathlib import Path

from hookshield.core.headers import CERTIFICATE_HEADERS, CLIENT_ADDRESS_HEADERS, catalogued
from hookshield.core.sources import HEADER_SOURCES
from hookshield.pki import CertificateAuthority
from hookshield.proxy_config import ProxyOptions, envoy, haproxy, nginx
from hookshield.scanner.checks.auth import forged_headers
from tests.conftest import ALLOWED


def test_every_source_reads_catalogued_headers() -> None:
    for cls in HEADER_SOURCES.values():
        source = cls()
        for header in (source.cert_header, source.verify_header, source.chain_header):
            assert header is None or catalogued(header), (cls.name, header)


def test_the_scanner_forges_every_style_under_catalogued_names() -> None:
    cert = CertificateAuthority.create().issue_client(spiffe_id=ALLOWED).certificate
    sent = {name for _, headers in forged_headers(cert) for name in headers}
    assert [name for name in sorted(sent) if not catalogued(name)] == []


def proxy_options(directory: Path) -> ProxyOptions:
    return ProxyOptions(
        upstream="127.0.0.1:8000",
        client_ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server.key",
        secret="s" * 32,
    )


def test_every_generated_configuration_names_every_catalogued_header(tmp_path) -> None:
    options = proxy_options(tmp_path)
    for render in (nginx.render, haproxy.render):
        text = render(options).lower()
        assert [h for h in CERTIFICATE_HEADERS if h.lower() not in text] == []
    # Envoy replaces XFCC itself (SANITIZE_SET) and removes every other catalogued name.
    text = envoy.render(options)
    assert [h for h in CERTIFICATE_HEADERS if h.lower() not in text.lower()] == [
        "X-Forwarded-Client-Cert"
    ]
    assert "SANITIZE_SET" in text


def test_every_generated_configuration_replaces_client_address_headers(tmp_path) -> None:
    options = proxy_options(tmp_path)
    for render in (nginx.render, haproxy.render):
        text = render(options)
        assert [h for h in CLIENT_ADDRESS_HEADERS if h not in text] == []
    # Envoy keeps X-Forwarded-For, appending the connection's address to it; removes the rest.
    text = envoy.render(options)
    assert [h for h in CLIENT_ADDRESS_HEADERS if h not in text] == ["X-Forwarded-For"]
    assert "use_remote_address: true" in text


def test_catalogued_ignores_case_and_underscores() -> None:
    assert catalogued("x_ssl_client_cert")
    assert catalogued("X-ARR-CLIENTCERT")
    assert not catalogued("X-Request-Id")
