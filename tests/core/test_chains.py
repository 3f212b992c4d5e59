"""Lists are chains or nothing: every source that carries a leaf and more refuses a list whose
later items are not CA certificates that issued the item before them.

The attack: a client's own copy of a header and the proxy's arrive joined (an appending proxy, or
two header lines), client first. Read as "leaf, then chain", the client's certificate (one it
merely saw: certificates are public) would become the caller.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from cryptography import x509

from hookshield.core.errors import Code, Rejection
from hookshield.core.pipeline import Endpoint, Guard, Webhook
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust, parse_networks
from hookshield.core.sources import Inbound, build_source
from hookshield.core.verify import Verifier
from hookshield.pki import encodings
from tests.conftest import ALLOWED, VIA_INTERMEDIATE, TestPki


def inbound(source: str, certs: list[x509.Certificate]) -> Inbound:
    """What source ``source`` receives when the list ``certs`` (leaf first) is presented."""
    leaf, rest = certs[0], certs[1:]
    pems = [encodings.pem(c) for c in certs]
    meta: dict[str, Any] = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2"}
    scope = None
    if source == "traefik":
        meta["HTTP_X_FORWARDED_TLS_CLIENT_CERT"] = encodings.traefik(certs)
    elif source == "envoy-xfcc":
        meta["HTTP_X_FORWARDED_CLIENT_CERT"] = encodings.xfcc_element(leaf, chain=rest)
    elif source == "gcp":
        meta["HTTP_X_CLIENT_CERT_LEAF"] = encodings.rfc9440(leaf)
        meta["HTTP_X_CLIENT_CERT_CHAIN"] = encodings.rfc9440_list(rest)
        meta["HTTP_X_CLIENT_CERT_CHAIN_VERIFIED"] = "true"
    elif source == "cloudflare":
        meta["HTTP_CLIENT_CERT"] = encodings.rfc9440(leaf)
        meta["HTTP_CLIENT_CERT_CHAIN"] = encodings.rfc9440_list(rest)
    elif source == "aws-alb":
        meta["HTTP_X_AMZN_MTLS_CLIENTCERT"] = encodings.alb(*certs)
    elif source == "asgi-tls":
        scope = {"extensions": {"tls": {"client_cert_chain": pems, "client_cert_error": None}}}
    else:
        assert source == "wsgi-environ"
        meta |= {"SSL_CLIENT_CERT": pems[0], "SSL_CLIENT_VERIFY": "SUCCESS"}
        meta |= {f"SSL_CLIENT_CERT_CHAIN_{i}": pem for i, pem in enumerate(pems[1:])}
    return Inbound(peer="127.0.0.1", meta=meta, scope=scope, read=io.BytesIO(b"{}").read)


SOURCES = ["traefik", "envoy-xfcc", "gcp", "cloudflare", "aws-alb", "asgi-tls", "wsgi-environ"]


def check(pki: TestPki, source: str, certs: list[x509.Certificate]) -> Webhook | Rejection:
    guard = Guard(
        source=build_source(source),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"])),
        verifier=Verifier([pki.root.certificate]),
        endpoints={"p": Endpoint("p", Allowlist.parse([ALLOWED, VIA_INTERMEDIATE]))},
    )
    return guard.check(inbound(source, certs), "p")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("with_root", [False, True])
def test_a_leaf_and_its_issuers_are_a_chain(pki: TestPki, source: str, with_root: bool) -> None:
    certs = [pki.via_intermediate.certificate, pki.intermediate.certificate]
    if with_root:  # clients often send the root too
        certs.append(pki.root.certificate)
    result = check(pki, source, certs)
    assert isinstance(result, Webhook)
    assert result.identity.spiffe_id == VIA_INTERMEDIATE


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "second",
    [
        "other",  # the proxy's copy behind the client's: a leaf, not a CA
        "stranger_ca",  # a CA certificate, but not the leaf's issuer
        "intermediate_first",  # the right certificates in the wrong order
    ],
)
def test_a_list_that_is_not_a_chain_is_refused(pki: TestPki, source: str, second: str) -> None:
    if second == "other":
        certs = [pki.allowed.certificate, pki.other.certificate]
    elif second == "stranger_ca":
        certs = [pki.allowed.certificate, pki.stranger_ca.certificate]
    else:
        certs = [pki.intermediate.certificate, pki.via_intermediate.certificate]
    result = check(pki, source, certs)
    assert isinstance(result, Rejection)
    assert result.code is Code.CLIENT_CERT_MALFORMED
    assert "must be a chain, leaf first" in result.reason


def twice(value: str) -> str:
    """A header sent twice, as servers hand it to Django: the values joined by ", "."""
    return f"{value}, {value}"


@pytest.mark.parametrize(
    ("source", "key", "value", "reason"),
    [
        ("nginx", "HTTP_X_SSL_CLIENT_CERT", "nginx", "holds several values"),
        ("haproxy", "HTTP_X_SSL_CLIENT_CERT", "haproxy", "holds several values"),
        ("gcp", "HTTP_X_CLIENT_CERT_LEAF", "rfc9440", "holds several values"),
        ("cloudflare", "HTTP_CLIENT_CERT", "rfc9440", "holds several values"),
        ("aws-alb", "HTTP_X_AMZN_MTLS_CLIENTCERT", "alb", "holds several values"),
        ("traefik", "HTTP_X_FORWARDED_TLS_CLIENT_CERT", "traefik", "must be a chain"),
    ],
)
def test_a_single_valued_header_sent_twice_is_refused(
    pki: TestPki, source: str, key: str, value: str, reason: str
) -> None:
    cert = pki.allowed.certificate
    encoded = {
        "nginx": encodings.nginx_escaped(cert),
        "haproxy": encodings.b64der(cert),
        "rfc9440": encodings.rfc9440(cert),
        "alb": encodings.alb(cert),
        "traefik": encodings.traefik([cert]),
    }[value]
    meta: dict[str, Any] = {
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        key: twice(encoded),
    }
    if source == "nginx":
        meta["HTTP_X_SSL_CLIENT_VERIFY"] = "SUCCESS"
    if source == "gcp":
        meta["HTTP_X_CLIENT_CERT_CHAIN_VERIFIED"] = "true"
    guard = Guard(
        source=build_source(source),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"])),
        verifier=Verifier([pki.root.certificate]),
        endpoints={"p": Endpoint("p", Allowlist.parse([ALLOWED]))},
    )
    result = guard.check(Inbound(peer="127.0.0.1", meta=meta, read=io.BytesIO(b"{}").read), "p")
    assert isinstance(result, Rejection)
    assert result.code is Code.CLIENT_CERT_MALFORMED
    assert reason in result.reason


def test_xfcc_is_a_list_of_hops_and_the_nearest_is_believed(pki: TestPki) -> None:
    """XFCC is multi-valued by design: each proxy appends; the last element is the nearest's."""
    client_copy = encodings.xfcc_element(pki.allowed.certificate)
    proxy_copy = encodings.xfcc_element(pki.other.certificate)
    guard = Guard(
        source=build_source("envoy-xfcc"),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"])),
        verifier=Verifier([pki.root.certificate]),
        endpoints={"p": Endpoint("p", Allowlist.parse([ALLOWED]))},
    )
    meta = {
        "HTTP_X_FORWARDED_CLIENT_CERT": f"{client_copy},{proxy_copy}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
    }
    result = guard.check(Inbound(peer="127.0.0.1", meta=meta, read=io.BytesIO(b"{}").read), "p")
    assert isinstance(result, Rejection)
    assert (
        result.code is Code.IDENTITY_NOT_ALLOWED
    )  # the proxy's (other) identity, not the client's
