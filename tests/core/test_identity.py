from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from hookshield.core.certs import load_chain
from hookshield.core.identity import ClientIdentity, is_spiffe_id
from hookshield.pki import CertificateAuthority, name

DATA = Path(__file__).parent.parent / "data"


def test_identity_of_the_reference_leaf() -> None:
    (cert,) = load_chain((DATA / "reference-leaf.pem").read_bytes())
    identity = ClientIdentity.from_certificate(cert)
    assert identity.spiffe_id == "spiffe://example.org/webhooks/sender-1"
    assert identity.uri_sans == ("spiffe://example.org/webhooks/sender-1",)
    assert identity.dns_sans == ()
    assert identity.subject == r"CN=sender-1,O=Acme\, Inc."
    assert identity.common_names == ("sender-1",)
    assert identity.issuer == "CN=Test Webhook CA"
    assert identity.serial == 0x1234
    assert (
        identity.fingerprint == "e4a5a9224b9adcb1ae91ed46852762e507bb04f89607c2bd0d059f960cc842fa"
    )
    assert identity.not_before.year == 2026
    assert identity.lifetime.days == 365
    assert identity.name == identity.spiffe_id


@pytest.mark.parametrize(
    "value",
    [
        "spiffe://example.org/a",
        "spiffe://corp.example/ns/prod/sa/pay-ments_1",
        "spiffe://a-b_c.d/x.y",
    ],
)
def test_valid_spiffe_ids(value: str) -> None:
    assert is_spiffe_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "spiffe://example.org",  # root path: names a trust domain, not a workload
        "spiffe://example.org/",
        "spiffe://Example.org/x",  # trust domains are lowercase
        "SPIFFE://example.org/x",
        "spiffe://example.org/x/",
        "spiffe://example.org//x",
        "spiffe://example.org/a/../b",
        "spiffe://example.org/./b",
        "spiffe://example.org/a%2Fb",
        "spiffe://user@example.org/x",
        "spiffe://example.org:8443/x",
        "spiffe://example.org/x?q=1",
        "spiffe://example.org/x#f",
        "https://example.org/x",
        "spiffe://" + "a" * 256 + "/x",
        "spiffe://example.org/" + "a" * 2048,
    ],
)
def test_invalid_spiffe_ids(value: str) -> None:
    assert not is_spiffe_id(value)


def test_two_uri_sans_mean_no_spiffe_id() -> None:
    ca = CertificateAuthority.create()
    cert = ca.issue_client(uris=["spiffe://corp.example/a", "spiffe://corp.example/b"]).certificate
    identity = ClientIdentity.from_certificate(cert)
    assert identity.spiffe_id is None
    assert identity.uri_sans == ("spiffe://corp.example/a", "spiffe://corp.example/b")


def test_a_signing_key_usage_means_no_spiffe_id() -> None:
    ca = CertificateAuthority.create()
    intermediate = ca.intermediate("x")
    # An intermediate CA certificate carrying a workload SPIFFE ID is no X509-SVID leaf.
    cert = intermediate.certificate
    assert ClientIdentity.from_certificate(cert).spiffe_id is None


def test_dns_sans_and_cn_only_identities() -> None:
    ca = CertificateAuthority.create()
    cert = ca.issue(
        subject=name("svc-a", O="Acme"),
        sans=[x509.DNSName("a.corp.example"), x509.DNSName("b.corp.example")],
    ).certificate
    identity = ClientIdentity.from_certificate(cert)
    assert identity.spiffe_id is None
    assert identity.dns_sans == ("a.corp.example", "b.corp.example")
    assert identity.name == "a.corp.example"
    assert identity.common_names == ("svc-a",)
    assert identity.subject == "CN=svc-a,O=Acme"
