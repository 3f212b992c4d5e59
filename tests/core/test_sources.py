from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from hookshield.core.certs import PresentedChain, fingerprint, pem_blocks
from hookshield.core.errors import (
    CertificateParseError,
    Code,
    ConfigurationError,
    ProxyVerifyError,
)
from hookshield.core.sources import HEADER_SOURCES, Inbound, build_source, meta_key
from hookshield.core.sources.asgi_tls import NoTlsChannel
from hookshield.core.sources.base import (
    DECODE_CACHE_MAX_TEXT,
    DECODE_CACHE_SIZE,
    HeaderSource,
)
from hookshield.core.sources.base import Inbound as BaseInbound
from hookshield.pki import encodings
from tests.conftest import TestPki, der

DATA = Path(__file__).parent.parent / "data"


def inbound(headers: dict[str, str] | None = None, /, **meta: Any) -> Inbound:
    environ: dict[str, Any] = {meta_key(k): v for k, v in (headers or {}).items()}
    environ.update(meta)
    return Inbound(peer="127.0.0.1", meta=environ)


def leaf_of(chain: PresentedChain | None) -> bytes:
    assert chain is not None
    return chain.leaf


def test_meta_key() -> None:
    assert meta_key("X-SSL-Client-Cert") == "HTTP_X_SSL_CLIENT_CERT"


# --- nginx -----------------------------------------------------------------------------------


def nginx(pki_cert: Any, verdict: str | None = "SUCCESS") -> Inbound:
    headers = {"X-SSL-Client-Cert": encodings.nginx_escaped(pki_cert)}
    if verdict is not None:
        headers["X-SSL-Client-Verify"] = verdict
    return inbound(headers)


def test_nginx_escaped_pem_with_success(pki: TestPki) -> None:
    chain = build_source("nginx").take(nginx(pki.allowed.certificate))
    assert leaf_of(chain) == der(pki.allowed.certificate)
    assert chain is not None
    assert chain.source == "nginx"


def test_nginx_without_certificate(pki: TestPki) -> None:
    source = build_source("nginx")
    assert source.take(inbound({"X-SSL-Client-Verify": "NONE"})) is None
    assert source.take(inbound({"X-SSL-Client-Cert": "", "X-SSL-Client-Verify": "NONE"})) is None
    assert source.take(inbound()) is None


def test_what_headers_make_is_kept_per_exact_values_and_bounded(pki: TestPki) -> None:
    source = build_source("nginx")
    assert isinstance(source, HeaderSource)
    allowed = nginx(pki.allowed.certificate)
    assert source.take(allowed) is source.take(allowed)  # decoded once
    # The verdict is part of what is kept: the same certificate, refused by the proxy, is refused.
    with pytest.raises(ProxyVerifyError):
        source.take(nginx(pki.allowed.certificate, verdict="FAILED:certificate revoked"))
    with pytest.raises(ProxyVerifyError):
        source.take(nginx(pki.allowed.certificate, verdict=None))
    # A refusal is not kept (it would be refused again whatever the cache held) ...
    garbage = inbound({"X-SSL-Client-Cert": "not-a-certificate", "X-SSL-Client-Verify": "SUCCESS"})
    for _ in range(2):
        with pytest.raises(CertificateParseError):
            source.take(garbage)
    # ... nor a value above DECODE_CACHE_MAX_TEXT, and distinct values never grow it past its size.
    escaped = encodings.nginx_escaped(pki.allowed.certificate)
    padded = " " * DECODE_CACHE_MAX_TEXT + escaped
    assert leaf_of(
        source.take(inbound({"X-SSL-Client-Cert": padded, "X-SSL-Client-Verify": "SUCCESS"}))
    )
    assert all(len(values[0]) < DECODE_CACHE_MAX_TEXT for values in source._taken)
    for spaces in range(DECODE_CACHE_SIZE + 5):
        source.take(
            inbound({"X-SSL-Client-Cert": " " * spaces + escaped, "X-SSL-Client-Verify": "SUCCESS"})
        )
        assert len(source._taken) <= DECODE_CACHE_SIZE


@pytest.mark.parametrize(
    "verdict", ["FAILED:self-signed certificate", "NONE", None, "success", "SUCCESS,SUCCESS"]
)
def test_nginx_verdict_other_than_success_is_refused(pki: TestPki, verdict: str | None) -> None:
    with pytest.raises(ProxyVerifyError):
        build_source("nginx").take(nginx(pki.allowed.certificate, verdict))


def test_nginx_joined_duplicate_header_is_refused(pki: TestPki) -> None:
    forged = encodings.nginx_escaped(pki.rogue.certificate)
    real = encodings.nginx_escaped(pki.allowed.certificate)
    joined = inbound({"X-SSL-Client-Cert": f"{forged},{real}", "X-SSL-Client-Verify": "SUCCESS"})
    with pytest.raises(CertificateParseError, match="several values"):
        build_source("nginx").take(joined)


def test_nginx_custom_header_names(pki: TestPki) -> None:
    source = build_source("nginx", cert_header="SSL-Client-Cert", verify_header="SSL-Client-Verify")
    headers = {
        "SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "SSL-Client-Verify": "SUCCESS",
    }
    assert leaf_of(source.take(inbound(headers))) == der(pki.allowed.certificate)
    assert source.meta_keys() == ("HTTP_SSL_CLIENT_CERT", "HTTP_SSL_CLIENT_VERIFY")


# --- AWS ALB ---------------------------------------------------------------------------------


def test_alb_keeps_plus_signs(pki: TestPki) -> None:
    value = encodings.alb(pki.allowed.certificate, pki.root.certificate)
    chain = build_source("aws-alb").take(inbound({"X-Amzn-Mtls-Clientcert": value}))
    assert chain is not None
    assert chain.ders == (der(pki.allowed.certificate), der(pki.root.certificate))


def test_alb_plus_signs_are_data_not_spaces() -> None:
    # The reference leaf's base64 holds '+' and '/', which ALB leaves raw: unquote_plus would
    # turn each '+' into a space and corrupt the DER (the reference's negative vector).
    reference = (DATA / "reference-leaf.pem").read_text()
    value = quote(reference, safe="+=/")
    assert "+" in value
    chain = build_source("aws-alb").take(inbound({"X-Amzn-Mtls-Clientcert": value}))
    assert chain is not None
    assert (
        fingerprint(chain.leaf)
        == "e4a5a9224b9adcb1ae91ed46852762e507bb04f89607c2bd0d059f960cc842fa"
    )


# --- HAProxy ---------------------------------------------------------------------------------


def test_haproxy_base64_der_plain_and_quoted(pki: TestPki) -> None:
    b64 = encodings.b64der(pki.allowed.certificate)
    source = build_source("haproxy")
    assert leaf_of(source.take(inbound({"X-SSL-Client-Cert": b64}))) == der(pki.allowed.certificate)
    quoted = inbound({"X-SSL-Client-Cert": f'"{b64}"'})
    assert leaf_of(source.take(quoted)) == der(pki.allowed.certificate)


def test_haproxy_empty_quotes_mean_no_certificate() -> None:
    assert build_source("haproxy").take(inbound({"X-SSL-Client-Cert": '""'})) is None


@pytest.mark.parametrize(
    "value",
    ["(null)", "{http.request.tls.client.certificate_der_base64}", "-----BEGIN CERTIFICATE-----"],
)
def test_haproxy_placeholders_and_other_formats_are_malformed(value: str) -> None:
    with pytest.raises(CertificateParseError):
        build_source("haproxy").take(inbound({"X-SSL-Client-Cert": value}))


# --- Caddy -----------------------------------------------------------------------------------


def test_caddy_base64_der_leaf(pki: TestPki) -> None:
    b64 = encodings.b64der(pki.allowed.certificate)
    source = build_source("caddy")
    assert source.meta_keys() == ("HTTP_X_CADDY_CLIENT_CERT",)
    chain = source.take(inbound({"X-Caddy-Client-Cert": b64}))
    assert leaf_of(chain) == der(pki.allowed.certificate)
    assert chain is not None
    assert chain.source == "caddy"
    assert source.take(inbound({"X-Caddy-Client-Cert": ""})) is None  # no certificate


@pytest.mark.parametrize(
    "value",
    [
        "{http.request.tls.client.certificate_der_base64}",  # an unexpanded placeholder
        "-----BEGIN CERTIFICATE-----",
        "(null)",
    ],
)
def test_caddy_placeholders_and_other_formats_are_malformed(value: str) -> None:
    with pytest.raises(CertificateParseError):
        build_source("caddy").take(inbound({"X-Caddy-Client-Cert": value}))


def test_caddy_joined_copies_are_refused(pki: TestPki) -> None:
    b64 = encodings.b64der(pki.allowed.certificate)
    with pytest.raises(CertificateParseError, match="several values"):
        build_source("caddy").take(inbound({"X-Caddy-Client-Cert": f"{b64},{b64}"}))


# --- Apache httpd ----------------------------------------------------------------------------


def apache(cert: Any, verdict: str | None = "SUCCESS") -> Inbound:
    """What ``RequestHeader set`` makes of the PEM: its line breaks become spaces."""
    headers = {"SSL-Client-Cert": encodings.pem(cert).replace("\n", " ")}
    if verdict is not None:
        headers["SSL-Client-Verify"] = verdict
    return inbound(headers)


def test_apache_space_folded_pem_with_success(pki: TestPki) -> None:
    source = build_source("apache")
    assert source.meta_keys() == ("HTTP_SSL_CLIENT_CERT", "HTTP_SSL_CLIENT_VERIFY")
    chain = source.take(apache(pki.allowed.certificate))
    assert leaf_of(chain) == der(pki.allowed.certificate)


@pytest.mark.parametrize("verdict", [None, "FAILED:unable to get issuer", "GENEROUS", ""])
def test_apache_verdict_other_than_success_is_refused(pki: TestPki, verdict: str | None) -> None:
    with pytest.raises(ProxyVerifyError):
        build_source("apache").take(apache(pki.allowed.certificate, verdict))


def test_apache_null_means_no_certificate() -> None:
    """httpd writes "(null)" for an unset variable, and NONE as the verdict."""
    source = build_source("apache")
    assert source.take(inbound({"SSL-Client-Cert": "(null)", "SSL-Client-Verify": "NONE"})) is None
    assert source.take(inbound({"SSL-Client-Verify": "NONE"})) is None


def test_apache_a_certificate_with_verdict_none_is_refused(pki: TestPki) -> None:
    with pytest.raises(ProxyVerifyError):
        build_source("apache").take(apache(pki.allowed.certificate, "NONE"))


def test_apache_joined_copies_are_refused(pki: TestPki) -> None:
    folded = encodings.pem(pki.allowed.certificate).replace("\n", " ")
    headers = {"SSL-Client-Cert": f"{folded},{folded}", "SSL-Client-Verify": "SUCCESS"}
    with pytest.raises(CertificateParseError):
        build_source("apache").take(inbound(headers))


def test_haproxy_optional_verify_header(pki: TestPki) -> None:
    source = build_source("haproxy", verify_header="X-SSL-Client-Verify")
    b64 = encodings.b64der(pki.allowed.certificate)
    ok = inbound({"X-SSL-Client-Cert": b64, "X-SSL-Client-Verify": "0"})
    assert source.take(ok) is not None
    with pytest.raises(ProxyVerifyError):
        source.take(inbound({"X-SSL-Client-Cert": b64, "X-SSL-Client-Verify": "18"}))


# --- Traefik ---------------------------------------------------------------------------------


@pytest.mark.parametrize("escaped", [False, True], ids=["v2.10+", "before-v2.10"])
def test_traefik_chain(pki: TestPki, escaped: bool) -> None:
    certs = [pki.via_intermediate.certificate, *pki.via_intermediate.intermediates]
    value = encodings.traefik(certs, escaped=escaped)
    chain = build_source("traefik").take(inbound({"X-Forwarded-Tls-Client-Cert": value}))
    assert chain is not None
    assert chain.ders == tuple(der(c) for c in certs)


def test_traefik_refuses_garbage_items(pki: TestPki) -> None:
    value = encodings.b64der(pki.allowed.certificate) + ",not base64!"
    with pytest.raises(CertificateParseError):
        build_source("traefik").take(inbound({"X-Forwarded-Tls-Client-Cert": value}))


# --- RFC 9440: GCP and Cloudflare ------------------------------------------------------------


def test_gcp_needs_the_verified_flag(pki: TestPki) -> None:
    leaf = pki.via_intermediate
    headers = {
        "X-Client-Cert-Leaf": encodings.rfc9440(leaf.certificate),
        "X-Client-Cert-Chain": encodings.rfc9440_list(leaf.intermediates),
        "X-Client-Cert-Chain-Verified": "true",
    }
    chain = build_source("gcp").take(inbound(headers))
    assert chain is not None
    assert chain.ders == (der(leaf.certificate), *(der(c) for c in leaf.intermediates))
    headers["X-Client-Cert-Chain-Verified"] = "false"
    with pytest.raises(ProxyVerifyError):
        build_source("gcp").take(inbound(headers))


def test_cloudflare_rfc9440(pki: TestPki) -> None:
    value = encodings.rfc9440(pki.allowed.certificate)
    assert leaf_of(build_source("cloudflare").take(inbound({"Client-Cert": value}))) == der(
        pki.allowed.certificate
    )


@pytest.mark.parametrize("value", [":abc", "abc:", "::", ":YWJj:, :YWJj:", "YWJj"])
def test_rfc9440_malformed(value: str) -> None:
    with pytest.raises(CertificateParseError):
        build_source("cloudflare").take(inbound({"Client-Cert": value}))


# --- Envoy XFCC ------------------------------------------------------------------------------


def test_xfcc_single_element(pki: TestPki) -> None:
    value = encodings.xfcc_element(pki.allowed.certificate, by="spiffe://corp.example/app")
    chain = build_source("envoy-xfcc").take(inbound({"X-Forwarded-Client-Cert": value}))
    assert leaf_of(chain) == der(pki.allowed.certificate)


def test_xfcc_uses_chain_when_present(pki: TestPki) -> None:
    leaf = pki.via_intermediate
    value = encodings.xfcc_element(leaf.certificate, chain=leaf.intermediates)
    chain = build_source("envoy-xfcc").take(inbound({"X-Forwarded-Client-Cert": value}))
    assert chain is not None
    assert chain.ders == (der(leaf.certificate), *(der(c) for c in leaf.intermediates))


def test_xfcc_believes_only_the_nearest_element(pki: TestPki) -> None:
    # APPEND_FORWARD: the client sent a forged element; the sidecar appended the real one.
    forged = encodings.xfcc_element(pki.rogue.certificate)
    real = encodings.xfcc_element(pki.other.certificate)
    chain = build_source("envoy-xfcc").take(
        inbound({"X-Forwarded-Client-Cert": f"{forged},{real}"})
    )
    assert leaf_of(chain) == der(pki.other.certificate)


def test_xfcc_element_without_cert_is_refused(pki: TestPki) -> None:
    value = encodings.xfcc_element(pki.allowed.certificate, with_cert=False)
    with pytest.raises(CertificateParseError, match="no Cert or Chain"):
        build_source("envoy-xfcc").take(inbound({"X-Forwarded-Client-Cert": value}))


def test_xfcc_hash_must_match_the_cert(pki: TestPki) -> None:
    value = encodings.xfcc_element(pki.allowed.certificate).replace("Hash=", "Hash=00", 1)
    with pytest.raises(CertificateParseError, match="Hash does not match"):
        build_source("envoy-xfcc").take(inbound({"X-Forwarded-Client-Cert": value}))


# --- ASGI TLS extension ----------------------------------------------------------------------


def asgi(tls: dict[str, Any] | None) -> Inbound:
    scope: dict[str, Any] = {"type": "http", "extensions": {} if tls is None else {"tls": tls}}
    return BaseInbound(peer="127.0.0.1", meta={}, scope=scope)


def test_asgi_tls_chain(pki: TestPki) -> None:
    leaf = pki.via_intermediate
    pems = [encodings.pem(leaf.certificate), *(encodings.pem(c) for c in leaf.intermediates)]
    chain = build_source("asgi-tls").take(
        asgi({"client_cert_chain": pems, "client_cert_error": None})
    )
    assert chain is not None
    assert chain.ders == (der(leaf.certificate), *(der(c) for c in leaf.intermediates))


def test_asgi_tls_without_a_client_certificate() -> None:
    assert build_source("asgi-tls").take(asgi({"client_cert_chain": []})) is None


@pytest.mark.parametrize(
    ("inbound", "why"),
    [
        (asgi(None), "the ASGI server passed no TLS extension"),
        (BaseInbound(peer="", meta={}), "this request came through a WSGI server"),
    ],
)
def test_asgi_tls_where_no_server_can_hand_over_a_certificate(
    inbound: BaseInbound, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    source = build_source("asgi-tls")
    for _ in range(3):
        with pytest.raises(NoTlsChannel) as raised:
            source.take(inbound)
        assert raised.value.rejection().code is Code.CLIENT_CERT_MISSING
        assert why in str(raised.value)
    # The deployment's mistake, not the caller's: one ERROR naming the fix, not one per request.
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "set HOOKSHIELD['CERT_SOURCE']" in error.getMessage()


def test_asgi_tls_error_means_unverified(pki: TestPki) -> None:
    tls = {
        "client_cert_chain": [encodings.pem(pki.rogue.certificate)],
        "client_cert_error": "self-signed",
    }
    with pytest.raises(ProxyVerifyError):
        build_source("asgi-tls").take(asgi(tls))


@pytest.mark.parametrize("chain", ["-----BEGIN CERTIFICATE-----", [b"bytes"], [42]])
def test_asgi_tls_malformed(chain: Any) -> None:
    with pytest.raises(CertificateParseError):
        build_source("asgi-tls").take(asgi({"client_cert_chain": chain}))


def test_asgi_tls_is_not_forwarded() -> None:
    assert build_source("asgi-tls").forwarded is False
    assert build_source("wsgi-environ").forwarded is False
    assert all(build_source(name).forwarded for name in HEADER_SOURCES)


# --- WSGI environ (Apache mod_ssl + mod_wsgi) -------------------------------------------------


def test_wsgi_environ_with_chain(pki: TestPki) -> None:
    leaf = pki.via_intermediate
    meta = {
        "SSL_CLIENT_CERT": encodings.pem(leaf.certificate),
        "SSL_CLIENT_CERT_CHAIN_0": encodings.pem(leaf.intermediates[0]),
        "SSL_CLIENT_VERIFY": "SUCCESS",
    }
    chain = build_source("wsgi-environ").take(inbound(**meta))
    assert chain is not None
    assert chain.ders == (der(leaf.certificate), der(leaf.intermediates[0]))


@pytest.mark.parametrize("verdict", ["GENEROUS", "FAILED:unable to get issuer", "NONE"])
def test_wsgi_environ_verdicts_other_than_success(pki: TestPki, verdict: str) -> None:
    meta = {"SSL_CLIENT_CERT": encodings.pem(pki.rogue.certificate), "SSL_CLIENT_VERIFY": verdict}
    with pytest.raises(ProxyVerifyError):
        build_source("wsgi-environ").take(inbound(**meta))


def test_wsgi_environ_absent_and_null() -> None:
    source = build_source("wsgi-environ")
    assert source.take(inbound()) is None
    assert source.take(inbound(SSL_CLIENT_CERT="(null)")) is None


def test_wsgi_environ_ignores_client_headers_of_the_same_name(pki: TestPki) -> None:
    # A client can send "SSL-Client-Cert: ..." but it lands under HTTP_SSL_CLIENT_CERT.
    forged = inbound({"SSL-Client-Cert": encodings.pem(pki.rogue.certificate).replace("\n", "")})
    assert build_source("wsgi-environ").take(forged) is None


# --- custom sources --------------------------------------------------------------------------


class CustomSource:
    name = "custom"
    forwarded = True

    def meta_keys(self) -> tuple[str, ...]:
        return ("HTTP_X_CUSTOM_CERT",)

    def take(self, inbound: Inbound) -> PresentedChain | None:
        value = inbound.meta.get("HTTP_X_CUSTOM_CERT")
        return PresentedChain(pem_blocks(value, "custom"), self.name) if value else None


class Incomplete:
    name = "incomplete"

    def take(self, inbound: Inbound) -> None:
        return None


def test_custom_source_by_dotted_path(pki: TestPki) -> None:
    source = build_source("tests.core.test_sources.CustomSource")
    assert isinstance(source, CustomSource)
    headers = {"X-Custom-Cert": encodings.pem(pki.allowed.certificate)}
    assert leaf_of(source.take(inbound(headers))) == der(pki.allowed.certificate)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nosuchsource", "not one of"),
        ("tests.core.test_sources.Missing", "cannot be instantiated"),
        ("no.such.module.Source", "cannot be instantiated"),
        ("tests.core.test_sources.Incomplete", "lacks 'forwarded'"),
    ],
)
def test_bad_custom_sources(path: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_source(path)
