"""Look-alike identities resemble the legitimate names without ever being one of them."""

from __future__ import annotations

import pytest

from hookshield.pki import CertificateAuthority
from hookshield.scanner.profiles import _variants, look_alikes, names


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("spiffe", "spiffe://corp.example/agent/1234"),  # no letters in the last segment
        ("uri", "https://svc.example.com/"),  # an empty last segment
        ("cn", "12345"),
        ("cn", "payments-gateway"),
        ("dns", "pay.corp.example"),
    ],
)
def test_no_variant_is_the_name_itself(kind: str, value: str) -> None:
    variants = _variants(kind, value)
    assert variants
    assert all(alike != value for alike, _ in variants.values())


def test_no_look_alike_carries_a_legitimate_name() -> None:
    ca = CertificateAuthority.create("look-alike test CA")
    legit = ca.issue_client(
        spiffe_id="spiffe://corp.example/agent/1234", common_name="12345", dns_names=["a.example"]
    ).certificate
    legit_names = set(names(legit))
    for alike in look_alikes(legit, ca, other_spiffe_id="spiffe://corp.example/other"):
        carried = set(names(alike.issued.certificate))
        if alike.kind == "cn-other-spiffe":  # the legitimate CN, by design, under another ID
            carried.discard(("cn", "12345"))
        if alike.kind == "extra-san":  # the legitimate SPIFFE ID plus a second one
            continue
        if alike.kind in ("dn-second-cn", "dn-multi-valued-rdn"):  # two CNs: not one identity
            continue
        assert not carried & legit_names, alike.kind
