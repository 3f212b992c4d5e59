from __future__ import annotations

import pytest
from cryptography import x509

from hookshield.core.errors import ConfigurationError
from hookshield.core.identity import ClientIdentity
from hookshield.core.policy import Allowlist
from hookshield.pki import CertificateAuthority, name

ALLOWED = "spiffe://corp.example/payments"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


def identity_of(ca: CertificateAuthority, **kwargs) -> ClientIdentity:
    return ClientIdentity.from_certificate(ca.issue(**kwargs).certificate)


def spiffe(ca: CertificateAuthority, *uris: str) -> ClientIdentity:
    return identity_of(ca, sans=[x509.UniformResourceIdentifier(u) for u in uris])


def test_parse_sorts_entries_by_form() -> None:
    allow = Allowlist.parse(
        [
            ALLOWED,
            "dns:pay.corp.example",
            "uri:https://corp.example/ids/pay",
            "sha256:" + ":".join(["AB"] * 32),
            "cn:legacy-pay",
        ],
        allow_cn=True,
    )
    assert allow.spiffe_ids == {ALLOWED}
    assert allow.dns_names == {"pay.corp.example"}
    assert allow.uris == {"https://corp.example/ids/pay"}
    assert allow.fingerprints == {"ab" * 32}
    assert allow.common_names == {"legacy-pay"}
    assert allow
    assert not Allowlist.parse([])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("payments", "no known form"),
        ("CN=payments,O=corp", "no known form"),
        ("dns:", "no known form"),
        ("regex:.*", "no known form"),
        ("spiffe://Corp.example/x", "not a valid SPIFFE ID"),
        ("spiffe://corp.example", "not a valid SPIFFE ID"),
        ("sha256:abcd", "64 hex digits"),
        ("cn:payments", "ALLOW_CN"),
        ("", "non-empty string"),
    ],
)
def test_parse_refuses_entries_it_cannot_match_exactly(entry: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        Allowlist.parse([ALLOWED, entry], where="HOOKSHIELD['ENDPOINTS']['p']['ALLOW']")
    assert "HOOKSHIELD['ENDPOINTS']['p']['ALLOW'][1]" in str(info.value)


def test_exact_spiffe_id_matches(ca: CertificateAuthority) -> None:
    assert Allowlist.parse([ALLOWED]).match(spiffe(ca, ALLOWED)) == ALLOWED


@pytest.mark.parametrize(
    "look_alike",
    [
        ALLOWED + "-evil",  # suffix
        ALLOWED + "/sub",  # child path
        "spiffe://corp.example/pay",  # prefix of the allowed path
        "spiffe://corp.example/Payments",  # case
        "spiffe://evil.corp.example/payments",  # substring in the trust domain
        "spiffe://corp.example.evil/payments",
        "spiffe://corp.example/x/payments",
    ],
)
def test_spiffe_look_alikes_do_not_match(ca: CertificateAuthority, look_alike: str) -> None:
    assert Allowlist.parse([ALLOWED]).match(spiffe(ca, look_alike)) is None


def test_an_extra_uri_san_voids_the_spiffe_id(ca: CertificateAuthority) -> None:
    two = spiffe(ca, ALLOWED, "spiffe://corp.example/other")
    assert Allowlist.parse([ALLOWED]).match(two) is None


@pytest.mark.parametrize(
    "dns",
    [
        "PAY.corp.example",
        "pay.corp.example.",
        "xpay.corp.example",
        "pay.corp.example.evil",
        "corp.example",
        "*.corp.example",
    ],
)
def test_dns_look_alikes_do_not_match(ca: CertificateAuthority, dns: str) -> None:
    allow = Allowlist.parse(["dns:pay.corp.example"])
    assert allow.match(identity_of(ca, sans=[x509.DNSName(dns)])) is None
    exact = identity_of(ca, sans=[x509.DNSName(dns), x509.DNSName("pay.corp.example")])
    assert allow.match(exact) == "dns:pay.corp.example"


def test_uri_sans_match_exactly(ca: CertificateAuthority) -> None:
    allow = Allowlist.parse(["uri:https://corp.example/ids/pay"])
    both = spiffe(ca, "https://corp.example/ids/pay", "https://corp.example/ids/other")
    assert allow.match(both) == "uri:https://corp.example/ids/pay"
    assert allow.match(spiffe(ca, "https://corp.example/ids/pay/")) is None


def test_fingerprint_pin(ca: CertificateAuthority) -> None:
    identity = spiffe(ca, "spiffe://corp.example/anything")
    pin = "sha256:" + identity.fingerprint.upper()
    assert Allowlist.parse([pin]).match(identity) == f"sha256:{identity.fingerprint}"
    assert Allowlist.parse([pin]).match(spiffe(ca, "spiffe://corp.example/anything")) is None


def test_cn_matching_needs_opt_in_exactness_and_a_single_cn(ca: CertificateAuthority) -> None:
    allow = Allowlist.parse(["cn:payments"], allow_cn=True)
    dns = [x509.DNSName("x.corp.example")]
    assert allow.match(identity_of(ca, subject=name("payments"), sans=dns)) == "cn:payments"
    assert allow.match(identity_of(ca, subject=name("payments-evil"), sans=dns)) is None
    assert allow.match(identity_of(ca, subject=name("Payments"), sans=dns)) is None
    # A DN that merely contains the allowed CN as text in another attribute.
    tricky = name("evil", OU="CN=payments")
    assert allow.match(identity_of(ca, subject=tricky, sans=dns)) is None
    two_cns = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "payments"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "evil"),
        ]
    )
    assert allow.match(identity_of(ca, subject=two_cns, sans=dns)) is None
