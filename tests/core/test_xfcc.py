from __future__ import annotations

import pytest

from hookshield.core.certs import MAX_ENCODED_BYTES
from hookshield.core.errors import CertificateParseError
from hookshield.core.sources import Inbound, build_source
from hookshield.core.sources.xfcc import MAX_ELEMENTS, MAX_PAIRS, parse_xfcc


def test_grammar_elements_pairs_and_repeated_keys() -> None:
    header = 'By=spiffe://a/b;Hash=ab;Subject="";URI=spiffe://c/d;DNS=x;DNS=y,By=spiffe://e/f;URI='
    first, second = parse_xfcc(header)
    assert first == (
        ("by", "spiffe://a/b"),
        ("hash", "ab"),
        ("subject", ""),
        ("uri", "spiffe://c/d"),
        ("dns", "x"),
        ("dns", "y"),
    )
    assert second == (("by", "spiffe://e/f"), ("uri", ""))


def test_quoted_values_keep_separators_and_escapes() -> None:
    (element,) = parse_xfcc(r'Subject="CN=a\,b,O=\"Acme\"; Inc.";URI=spiffe://x/y')
    assert element[0] == ("subject", 'CN=a,b,O="Acme"; Inc.')
    assert element[1] == ("uri", "spiffe://x/y")


def test_keys_are_case_insensitive() -> None:
    ((pair,),) = parse_xfcc("HASH=ab")
    assert pair == ("hash", "ab")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "without '='"),
        ("Hash", "without '='"),
        ("=x", "empty key"),
        ("Hash=a,", "without '='"),
        ("Hash=a;;URI=b", "without '='"),
        ('Subject="open', "not closed"),
        ('Subject="a\\', "lone backslash"),
        ('Subject="a"b', "after a quoted value"),
        ('URI=a"b', "contains a quote"),
        ('Ha"sh=a', "without '='"),
    ],
)
def test_malformed_headers(header: str, message: str) -> None:
    with pytest.raises(CertificateParseError, match=message):
        parse_xfcc(header)


def test_element_and_pair_counts_are_bounded() -> None:
    with pytest.raises(CertificateParseError, match="elements"):
        parse_xfcc(",".join(["Hash=a"] * (MAX_ELEMENTS + 1)))
    with pytest.raises(CertificateParseError, match="pairs"):
        parse_xfcc(";".join(["DNS=a"] * (MAX_PAIRS + 1)))


@pytest.mark.parametrize(
    "hostile",
    [
        'Subject="' + "\\" * (MAX_ENCODED_BYTES - 20),
        'Subject="' + '\\"' * ((MAX_ENCODED_BYTES - 20) // 2),
        "Subject=" + '"' * (MAX_ENCODED_BYTES - 20),
        "a" * (MAX_ENCODED_BYTES - 1),
        ("Hash=" + "=" * 100 + ";") * 600,
    ],
)
def test_pathological_quoting_ends_in_the_parse_error(hostile: str) -> None:
    source = build_source("envoy-xfcc")
    with pytest.raises(CertificateParseError):
        source.take(Inbound(peer="127.0.0.1", meta={"HTTP_X_FORWARDED_CLIENT_CERT": hostile}))


def test_oversized_header_is_refused_before_parsing() -> None:
    source = build_source("envoy-xfcc")
    huge = "Hash=" + "a" * MAX_ENCODED_BYTES
    with pytest.raises(CertificateParseError, match="max"):
        source.take(Inbound(peer="127.0.0.1", meta={"HTTP_X_FORWARDED_CLIENT_CERT": huge}))
