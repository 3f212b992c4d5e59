"""Property tests: whatever text arrives in a header, a source returns or raises SourceError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hookshield.core.certs import PresentedChain
from hookshield.core.errors import SourceError
from hookshield.core.sources import HEADER_SOURCES, Inbound, build_source, meta_key
from hookshield.core.sources.xfcc import parse_xfcc

SOURCES = {name: build_source(name) for name in (*HEADER_SOURCES, "asgi-tls", "wsgi-environ")}

# Text rich in the characters every format gives meaning to.
special = st.sampled_from(
    [
        *',;="\\:%+/ =\t-',
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        "MIIB",
        "Cert=",
        "Hash=",
        "%0A",
        "%2",
    ]
)
hostile_text = st.lists(st.one_of(special, st.text(max_size=8)), max_size=40).map("".join)


def only_source_errors(source_name: str, meta: dict[str, Any], scope: Any = None) -> None:
    try:
        result = SOURCES[source_name].take(Inbound(peer="127.0.0.1", meta=meta, scope=scope))
    except SourceError:
        return
    assert result is None or isinstance(result, PresentedChain)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(HEADER_SOURCES)),
    cert=hostile_text,
    verdict=hostile_text,
    chain=hostile_text,
)
def test_header_sources_raise_only_their_parse_errors(
    name: str, cert: str, verdict: str, chain: str
) -> None:
    source = SOURCES[name]
    keys = source.meta_keys()
    values = [cert, verdict, chain]
    only_source_errors(name, {key: values[i] for i, key in enumerate(keys)})


@settings(max_examples=200, deadline=None)
@given(hostile_text)
def test_xfcc_parser_raises_only_its_parse_error(header: str) -> None:
    try:
        elements = parse_xfcc(header)
    except SourceError:
        return
    assert all(
        isinstance(key, str) and isinstance(value, str)
        for element in elements
        for key, value in element
    )


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=20),
        st.lists(hostile_text, max_size=3),
        st.lists(st.one_of(st.integers(), st.binary(max_size=5)), max_size=2),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    ),
    st.one_of(st.none(), hostile_text),
)
def test_asgi_tls_raises_only_its_parse_errors(chain: Any, error: Any) -> None:
    scope = {"extensions": {"tls": {"client_cert_chain": chain, "client_cert_error": error}}}
    only_source_errors("asgi-tls", {}, scope)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["SSL_CLIENT_CERT", "SSL_CLIENT_VERIFY", "SSL_CLIENT_CERT_CHAIN_0"]),
        hostile_text,
    )
)
def test_wsgi_environ_raises_only_its_parse_errors(meta: dict[str, str]) -> None:
    only_source_errors("wsgi-environ", meta)


def test_meta_key_is_what_django_uses() -> None:
    assert meta_key("x-forwarded-client-cert") == "HTTP_X_FORWARDED_CLIENT_CERT"
