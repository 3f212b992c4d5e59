"""Property tests on hostile bytes: every step answers with a decision, never an exception.

Valid values of each format, mutated character by character over latin-1 (what a WSGI or ASGI
server hands Django for header bytes) and over all of Unicode; structured XFCC elements whose
values are hostile; DER certificates mutated byte by byte through the verifier; and the whole
pipeline on hostile requests.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookshield.core.certs import PresentedChain
from hookshield.core.errors import Rejection, SourceError
from hookshield.core.pipeline import Endpoint, Guard, Webhook
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust, parse_networks
from hookshield.core.sources import HEADER_SOURCES, Inbound, build_source, meta_key
from hookshield.core.verify import Verified, Verifier
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki

LATIN1 = st.characters(min_codepoint=0, max_codepoint=255)
ANY_CHAR = st.one_of(LATIN1, st.characters())
QUICK = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def valid_headers(pki: TestPki, name: str) -> dict[str, str]:
    """What the terminator behind source ``name`` sends for the via-intermediate client."""
    leaf, chain = pki.via_intermediate.certificate, pki.intermediate.certificate
    cert, verify, chain_value = {
        "nginx": (encodings.nginx_escaped(leaf), "SUCCESS", None),
        "envoy-xfcc": (
            encodings.xfcc_element(leaf, chain=[chain], by="spiffe://corp.example/x"),
            None,
            None,
        ),
        "traefik": (encodings.traefik([leaf, chain]), None, None),
        "haproxy": (encodings.b64der(leaf), None, None),
        "caddy": (encodings.b64der(leaf), None, None),
        "apache": (encodings.pem(leaf).replace("\n", " "), "SUCCESS", None),
        "aws-alb": (encodings.alb(leaf, chain), None, None),
        "gcp": (encodings.rfc9440(leaf), "true", encodings.rfc9440_list([chain])),
        "cloudflare": (encodings.rfc9440(leaf), None, None),
    }[name]
    source = HEADER_SOURCES[name]()
    headers = {source.cert_header: cert}
    if source.verify_header and verify is not None:
        headers[source.verify_header] = verify
    if source.chain_header and chain_value is not None:
        headers[source.chain_header] = chain_value
    return {meta_key(header): value for header, value in headers.items()}


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few characters replaced, inserted or deleted."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "insert" or not chars:
            chars.insert(position, draw(ANY_CHAR))
        elif action == "replace":
            chars[min(position, len(chars) - 1)] = draw(ANY_CHAR)
        else:
            del chars[min(position, len(chars) - 1)]
    return "".join(chars)


def decides(name: str, meta: dict[str, Any]) -> None:
    try:
        result = build_source(name).take(Inbound(peer="127.0.0.1", meta=meta))
    except SourceError:
        return
    assert result is None or isinstance(result, PresentedChain)


@pytest.mark.parametrize("name", sorted(HEADER_SOURCES))
def test_the_valid_value_of_each_source_decodes(pki: TestPki, name: str) -> None:
    chain = build_source(name).take(Inbound(peer="127.0.0.1", meta=valid_headers(pki, name)))
    assert isinstance(chain, PresentedChain)


@pytest.mark.parametrize("name", sorted(HEADER_SOURCES))
@QUICK
@given(data=st.data())
def test_mutated_header_values_raise_only_source_errors(
    pki: TestPki, name: str, data: st.DataObject
) -> None:
    meta = valid_headers(pki, name)
    key = data.draw(st.sampled_from(sorted(meta)))
    meta[key] = data.draw(mutated(meta[key]))
    decides(name, meta)


@QUICK
@given(
    hash_value=st.text(LATIN1, max_size=80) | st.text(max_size=80),
    extra=st.lists(
        st.tuples(
            st.sampled_from(["By", "Subject", "URI", "DNS", "Hash", "x"]), st.text(max_size=20)
        ),
        max_size=3,
    ),
    earlier=st.lists(st.text(LATIN1, max_size=30), max_size=2),
)
def test_xfcc_elements_with_hostile_values_raise_only_source_errors(
    pki: TestPki, hash_value: str, extra: list[tuple[str, str]], earlier: list[str]
) -> None:
    cert = '"' + encodings.nginx_escaped(pki.allowed.certificate) + '"'
    pairs = [f"Hash={hash_value}", f"Cert={cert}"]
    pairs += [f'{key}="{value.replace(chr(92), "").replace(chr(34), "")}"' for key, value in extra]
    header = ",".join([*earlier, ";".join(pairs)])
    decides("envoy-xfcc", {"HTTP_X_FORWARDED_CLIENT_CERT": header})


@st.composite
def mutated_der(draw: st.DrawFn, der: bytes) -> bytes:
    data = bytearray(der)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["replace", "replace", "insert", "delete"]))
        if action == "replace":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data.insert(position, draw(st.integers(0, 255)))
        else:
            del data[position]
    return bytes(data)


def der(cert: Any) -> bytes:
    return bytes(cert.public_bytes(Encoding.DER))


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), which=st.sampled_from(["leaf", "intermediate"]))
def test_mutated_der_gets_a_verdict_from_the_verifier(
    pki: TestPki, data: st.DataObject, which: str
) -> None:
    leaf, intermediate = der(pki.via_intermediate.certificate), der(pki.intermediate.certificate)
    if which == "leaf":
        chain = (data.draw(mutated_der(leaf)), intermediate)
    else:
        chain = (leaf, data.draw(mutated_der(intermediate)))
    verifier = Verifier([pki.root.certificate], cache_size=1)
    try:
        presented = PresentedChain(chain, "test")
    except SourceError:
        return
    assert isinstance(verifier.verify(presented), Verified | Rejection)
    assert isinstance(verifier.issued_by_anchor(presented), bool)


def test_a_version_2_certificate_is_malformed_not_a_crash(pki: TestPki) -> None:
    """The X.509 version field says v2 (value 1): cryptography raises when the field is read."""
    leaf = der(pki.allowed.certificate)
    marker = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
    assert marker in leaf
    v2 = leaf.replace(marker, bytes.fromhex("a003020101"), 1)
    result = Verifier([pki.root.certificate]).verify(PresentedChain((v2,), "test"))
    assert isinstance(result, Rejection)
    assert result.code == "client_cert_malformed"


def test_a_non_ascii_xfcc_hash_is_malformed_not_a_crash(pki: TestPki) -> None:
    cert = '"' + encodings.nginx_escaped(pki.allowed.certificate) + '"'
    for hash_value in ("\xe9", "é" * 64, "\udcff"):
        with pytest.raises(SourceError, match="Hash does not match"):
            build_source("envoy-xfcc").take(
                Inbound(
                    peer="127.0.0.1",
                    meta={"HTTP_X_FORWARDED_CLIENT_CERT": f"Hash={hash_value};Cert={cert}"},
                )
            )


def guard(pki: TestPki) -> Guard:
    return Guard(
        source=build_source("nginx"),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"])),
        verifier=Verifier([pki.root.certificate]),
        endpoints={"payments": Endpoint("payments", Allowlist.parse([ALLOWED]))},
    )


@QUICK
@given(
    cert=st.text(LATIN1, max_size=200),
    verify=st.text(LATIN1, max_size=20),
    content_type=st.text(LATIN1, max_size=40),
    length=st.text(LATIN1, max_size=12),
    body=st.binary(max_size=300),
    method=st.sampled_from(["POST", "GET", "PUT", "\xe9"]),
)
def test_the_pipeline_decides_on_any_request(
    pki: TestPki,
    cert: str,
    verify: str,
    content_type: str,
    length: str,
    body: bytes,
    method: str,
) -> None:
    valid = encodings.nginx_escaped(pki.allowed.certificate)
    meta = {
        "HTTP_X_SSL_CLIENT_CERT": cert or valid,
        "HTTP_X_SSL_CLIENT_VERIFY": verify or "SUCCESS",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": length,
    }
    inbound = Inbound(peer="127.0.0.1", meta=meta, method=method, read=io.BytesIO(body).read)
    assert isinstance(guard(pki).check(inbound, "payments"), Webhook | Rejection)


def test_a_serial_number_below_one_is_malformed(pki: TestPki) -> None:
    import warnings

    from hookshield.core.certs import parse_certificates

    leaf = der(pki.allowed.certificate)
    number = pki.allowed.certificate.serial_number
    serial = number.to_bytes((number.bit_length() + 8) // 8, "big")  # DER: a leading 0 if needed
    marker = bytes([0x02, len(serial)]) + serial
    assert marker in leaf
    negative = leaf.replace(marker, bytes([0x02, len(serial)]) + bytes([0x80]) + serial[1:], 1)
    for action in ("error", "ignore"):  # warnings as errors (as here) or not (as in production)
        with warnings.catch_warnings():
            warnings.simplefilter(action)
            with pytest.raises(SourceError):
                parse_certificates([negative])
