from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from hookshield.core.certs import (
    MAX_CERTS,
    MAX_ENCODED_BYTES,
    PresentedChain,
    b64_der,
    fingerprint,
    load_chain,
    parse_certificates,
    pem_blocks,
)
from hookshield.core.errors import CertificateParseError
from hookshield.pki import CertificateAuthority

DATA = Path(__file__).parent.parent / "data"
LEAF_PEM = (DATA / "reference-leaf.pem").read_text()
# Values computed independently: docs/certificate-formats.md.
LEAF_SHA256 = "e4a5a9224b9adcb1ae91ed46852762e507bb04f89607c2bd0d059f960cc842fa"


def test_fingerprint_matches_the_reference_vector() -> None:
    (der,) = pem_blocks(LEAF_PEM, "leaf")
    # 30 82 01 a5: a 421-byte body behind a 4-byte header.
    assert len(der) == 425
    assert fingerprint(der) == LEAF_SHA256


def test_pem_blocks_reads_several_blocks_in_order() -> None:
    ca = (DATA / "reference-ca.pem").read_text()
    leaf, issuer = pem_blocks(LEAF_PEM + ca, "chain")
    assert fingerprint(leaf) == LEAF_SHA256
    assert issuer != leaf


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda p: p.replace("\n", "\n\t").rstrip("\t\n"), id="nginx-legacy-obs-fold"),
        pytest.param(lambda p: p.replace("\n", " "), id="apache-requestheader-spaces"),
        pytest.param(lambda p: p.replace("\n", "\r\n"), id="crlf"),
    ],
)
def test_pem_blocks_tolerate_whitespace_that_proxies_substitute_for_newlines(mangle) -> None:
    (der,) = pem_blocks(mangle(LEAF_PEM), "leaf")
    assert fingerprint(der) == LEAF_SHA256


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no PEM certificate"),
        ("(null)", "outside PEM blocks"),
        ("garbage" + LEAF_PEM, "outside PEM blocks"),
        (LEAF_PEM + "trailing", "outside PEM blocks"),
        (LEAF_PEM.replace("-----END CERTIFICATE-----", ""), "unterminated"),
        (LEAF_PEM.replace("MIIB", "MI*B"), "non-base64"),
        (LEAF_PEM.replace("vUB0=", "vUB0"), "not strict base64"),
        (LEAF_PEM.replace("vUB0=", "vUB1="), "not canonical base64"),
        ("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "empty"),
    ],
)
def test_pem_blocks_refuse_malformed_input(text: str, message: str) -> None:
    with pytest.raises(CertificateParseError, match=message):
        pem_blocks(text, "header")


def test_pem_blocks_refuse_too_many_certificates() -> None:
    with pytest.raises(CertificateParseError, match="more than"):
        pem_blocks(LEAF_PEM * (MAX_CERTS + 1), "header")


def test_oversized_input_is_refused_before_decoding() -> None:
    with pytest.raises(CertificateParseError, match="max"):
        pem_blocks(" " * (MAX_ENCODED_BYTES + 1), "header")


@pytest.mark.parametrize("value", ["", "abc", "YWJj\n", "YW Jj", "YWJj=", "!!!!", "Zm9v\u00e9"])
def test_b64_der_is_strict(value: str) -> None:
    with pytest.raises(CertificateParseError):
        b64_der(value, "header")


def test_parse_certificates_refuses_broken_der_and_trailing_bytes() -> None:
    (der,) = pem_blocks(LEAF_PEM, "leaf")
    with pytest.raises(CertificateParseError, match="certificate 0"):
        parse_certificates([der[:-10]])
    with pytest.raises(CertificateParseError, match="certificate 1"):
        parse_certificates([der, der + b"\x00"])
    assert parse_certificates([der])[0].serial_number == 0x1234


def test_presented_chain_bounds() -> None:
    with pytest.raises(CertificateParseError, match="empty"):
        PresentedChain((), "test")
    with pytest.raises(CertificateParseError, match="max"):
        PresentedChain((b"x",) * (MAX_CERTS + 1), "test")


def test_load_chain_accepts_comments_in_bundles_and_der() -> None:
    (der,) = pem_blocks(LEAF_PEM, "leaf")
    bundle = ("# a comment a CA bundle may carry\n" + LEAF_PEM).encode()
    assert len(load_chain(bundle)) == 1
    assert load_chain(der)[0].serial_number == 0x1234
    with pytest.raises(CertificateParseError, match="no valid PEM or DER"):
        load_chain(b"not a certificate")
    with pytest.raises(CertificateParseError):
        load_chain(base64.b64encode(der))


def test_a_name_attribute_of_a_string_type_its_oid_forbids_is_unreadable() -> None:
    # cryptography raises TypeError (not ValueError) for a CN encoded as a BIT STRING: found by
    # the mutation test in test_hostile_bytes; it must be a parse error, never an exception.
    ca = CertificateAuthority.create("bitstring test root")
    leaf = ca.issue_client(spiffe_id="spiffe://corp.example/a", common_name="ZZbitZZ")
    der = leaf.certificate.public_bytes(Encoding.DER)
    utf8_cn = b"\x0c\x07ZZbitZZ"
    assert utf8_cn in der
    bit_string_cn = der.replace(utf8_cn, b"\x03\x07\x00ZbitZZ")
    with pytest.raises(CertificateParseError, match="not valid DER"):
        parse_certificates((bit_string_cn,))
