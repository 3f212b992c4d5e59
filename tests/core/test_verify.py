from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hookshield.core.errors import Code, Rejection
from hookshield.core.revocation import RevocationLists
from hookshield.core.verify import LongLived, Verified, Verifier
from hookshield.pki import CertificateAuthority, name, self_signed_copy
from tests.conftest import ALLOWED, VIA_INTERMEDIATE, TestPki, presented


def verifier(pki: TestPki, **kwargs) -> Verifier:
    return Verifier([pki.root.certificate], **kwargs)


def code_of(result: Verified | Rejection) -> Code | None:
    return result.code if isinstance(result, Rejection) else None


def test_a_valid_chain_yields_its_identity(pki: TestPki) -> None:
    result = verifier(pki).verify(presented(pki.allowed))
    assert isinstance(result, Verified)
    assert result.identity.spiffe_id == ALLOWED
    assert not result.long_lived


@pytest.mark.parametrize(
    ("which", "code", "reason"),
    [
        ("expired", Code.CLIENT_CERT_EXPIRED, "expired at"),
        ("not_yet_valid", Code.CLIENT_CERT_NOT_YET_VALID, "valid from"),
        ("rogue", Code.CLIENT_CERT_UNTRUSTED, ""),
        ("foreign", Code.CLIENT_CERT_UNTRUSTED, ""),
        ("server", Code.CLIENT_CERT_UNTRUSTED, "EKU"),
    ],
)
def test_refusals(pki: TestPki, which: str, code: Code, reason: str) -> None:
    result = verifier(pki).verify(presented(getattr(pki, which)))
    assert isinstance(result, Rejection)
    assert result.code is code
    assert reason in result.reason


def test_a_critical_san_beside_a_subject_is_refused_with_the_rfc5280_reason(pki: TestPki) -> None:
    bad = pki.root.issue(
        subject=name("payments"), sans=[x509.UniformResourceIdentifier(ALLOWED)], san_critical=True
    )
    result = verifier(pki).verify(presented(bad))
    assert isinstance(result, Rejection)
    assert result.code is Code.CLIENT_CERT_UNTRUSTED
    assert "MUST NOT be critical" in result.reason


def test_intermediates_come_from_the_request_or_from_settings(pki: TestPki) -> None:
    leaf_only = presented(pki.via_intermediate, with_chain=False)
    assert code_of(verifier(pki).verify(leaf_only)) is Code.CLIENT_CERT_UNTRUSTED
    assert isinstance(verifier(pki).verify(presented(pki.via_intermediate)), Verified)
    configured = verifier(pki, intermediates=[pki.intermediate.certificate])
    result = configured.verify(leaf_only)
    assert isinstance(result, Verified)
    assert result.identity.spiffe_id == VIA_INTERMEDIATE


def test_no_trust_anchors_fails_closed(pki: TestPki) -> None:
    result = Verifier([]).verify(presented(pki.allowed))
    assert code_of(result) is Code.CLIENT_CERT_UNTRUSTED


def test_cn_only_certificates_verify_only_when_the_san_may_be_absent(pki: TestPki) -> None:
    cn_only = pki.root.issue(subject=name("legacy-payments"))
    assert code_of(verifier(pki).verify(presented(cn_only))) is Code.CLIENT_CERT_UNTRUSTED
    result = verifier(pki, san_optional=True).verify(presented(cn_only))
    assert isinstance(result, Verified)
    assert result.identity.common_names == ("legacy-payments",)
    # The relaxed policy still applies RFC 5280's rule on SAN criticality.
    bad = pki.root.issue(
        subject=name("x"), sans=[x509.DNSName("x.corp.example")], san_critical=True
    )
    assert (
        code_of(verifier(pki, san_optional=True).verify(presented(bad)))
        is Code.CLIENT_CERT_UNTRUSTED
    )


def test_long_lived_certificates_warn_or_are_refused(pki: TestPki) -> None:
    limit = dt.timedelta(days=90)
    warned = verifier(pki, max_lifetime=limit).verify(presented(pki.long_lived))
    assert isinstance(warned, Verified)
    assert warned.long_lived
    refused = verifier(pki, max_lifetime=limit, long_lived=LongLived.REJECT).verify(
        presented(pki.long_lived)
    )
    assert code_of(refused) is Code.CLIENT_CERT_TOO_LONG_LIVED
    assert "400 days" in refused.reason  # type: ignore[union-attr]
    assert isinstance(verifier(pki, max_lifetime=limit).verify(presented(pki.allowed)), Verified)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_hits_come_from_the_cache_until_the_certificate_expires(pki: TestPki) -> None:
    clock = Clock()
    v = verifier(pki, clock=clock)
    first = v.verify(presented(pki.allowed))
    assert v.verify(presented(pki.allowed)) is first  # the cached verdict, not a new one
    assert len(v) == 1
    clock.now = pki.allowed.certificate.not_valid_after_utc.timestamp() + 1
    assert code_of(v.verify(presented(pki.allowed))) is Code.CLIENT_CERT_EXPIRED


def test_refusals_are_cached_briefly(pki: TestPki) -> None:
    clock = Clock()
    v = verifier(pki, clock=clock)
    first = v.verify(presented(pki.rogue))
    assert v.verify(presented(pki.rogue)) is first
    clock.now += 31
    again = v.verify(presented(pki.rogue))
    assert again is not first
    assert again == first


def test_the_cache_is_bounded(pki: TestPki) -> None:
    v = verifier(pki, cache_size=2)
    for issued in (pki.allowed, pki.other, pki.long_lived, pki.rogue):
        v.verify(presented(issued))
    assert len(v) == 2


def test_a_chain_keyed_with_its_intermediates_is_a_separate_entry(pki: TestPki) -> None:
    v = verifier(pki)
    assert (
        code_of(v.verify(presented(pki.via_intermediate, with_chain=False)))
        is Code.CLIENT_CERT_UNTRUSTED
    )
    assert isinstance(v.verify(presented(pki.via_intermediate)), Verified)


def crl_lists(pki: TestPki, *paths: Path, **kwargs) -> RevocationLists:
    return RevocationLists(list(paths) or [pki.crl_file, pki.intermediate_crl_file], **kwargs)


def test_a_revoked_certificate_is_refused(pki: TestPki) -> None:
    v = verifier(pki, revocation=crl_lists(pki))
    assert code_of(v.verify(presented(pki.revoked))) is Code.CLIENT_CERT_REVOKED
    assert isinstance(v.verify(presented(pki.allowed)), Verified)
    assert isinstance(v.verify(presented(pki.via_intermediate)), Verified)


def test_a_path_without_a_crl_for_each_issuer_is_refused(pki: TestPki) -> None:
    v = verifier(pki, revocation=crl_lists(pki, pki.crl_file))
    result = v.verify(presented(pki.via_intermediate))
    assert code_of(result) is Code.CLIENT_CERT_REVOCATION_UNKNOWN
    assert "hookshield test intermediate CA" in result.reason  # type: ignore[union-attr]


def test_a_crl_signed_by_another_key_is_not_believed(pki: TestPki, tmp_path: Path) -> None:
    impostor = CertificateAuthority(pki.stranger_ca.certificate, pki.stranger_ca.key)
    # Same issuer name as the root, wrong key: as if someone dropped in a CRL that un-revokes.
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.certificate.subject)
        .last_update(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        .next_update(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        .sign(impostor.key, pki.root.certificate.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    path = tmp_path / "forged.crl"
    path.write_bytes(forged.public_bytes(Encoding.PEM))
    v = verifier(pki, revocation=crl_lists(pki, path))
    assert code_of(v.verify(presented(pki.revoked))) is Code.CLIENT_CERT_REVOCATION_UNKNOWN


def test_a_stale_crl_fails_closed(pki: TestPki, tmp_path: Path) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    path = tmp_path / "stale.crl"
    path.write_bytes(
        pki.root.crl(this_update=old, next_update=dt.timedelta(days=1)).public_bytes(Encoding.PEM)
    )
    v = verifier(pki, revocation=crl_lists(pki, path))
    assert code_of(v.verify(presented(pki.allowed))) is Code.CLIENT_CERT_REVOCATION_UNKNOWN


def test_an_unreadable_crl_fails_closed(pki: TestPki, tmp_path: Path) -> None:
    v = verifier(pki, revocation=crl_lists(pki, tmp_path / "missing.crl"))
    result = v.verify(presented(pki.allowed))
    assert code_of(result) is Code.CLIENT_CERT_REVOCATION_UNKNOWN
    assert "could not be loaded" in result.reason  # type: ignore[union-attr]


def test_a_reloaded_crl_voids_cached_verdicts(pki: TestPki, tmp_path: Path) -> None:
    root_crl = tmp_path / "root.crl"
    root_crl.write_bytes(pki.root.crl().public_bytes(Encoding.PEM))
    ticks = [0.0]
    lists = crl_lists(pki, root_crl, reload_interval=60, monotonic=lambda: ticks[0])
    v = verifier(pki, revocation=lists)
    leaf = pki.root.issue_client(spiffe_id=ALLOWED)
    assert isinstance(v.verify(presented(leaf)), Verified)
    root_crl.write_bytes(pki.root.crl([leaf.certificate]).public_bytes(Encoding.PEM))
    # Within the interval the files are not looked at; the cached verdict stands.
    ticks[0] = 30
    assert isinstance(v.verify(presented(leaf)), Verified)
    ticks[0] = 61
    assert code_of(v.verify(presented(leaf))) is Code.CLIENT_CERT_REVOKED


def test_an_explicit_reload(pki: TestPki, tmp_path: Path) -> None:
    root_crl = tmp_path / "root.crl"
    root_crl.write_bytes(pki.root.crl().public_bytes(Encoding.PEM))
    lists = crl_lists(pki, root_crl, reload_interval=3600)
    v = verifier(pki, revocation=lists)
    leaf = pki.root.issue_client(spiffe_id=ALLOWED)
    assert isinstance(v.verify(presented(leaf)), Verified)
    root_crl.write_bytes(pki.root.crl([leaf.certificate]).public_bytes(Encoding.PEM))
    lists.reload()
    assert code_of(v.verify(presented(leaf))) is Code.CLIENT_CERT_REVOKED


def test_issued_by_anchor_tells_our_expired_certificates_from_minted_ones(pki: TestPki) -> None:
    v = verifier(pki)
    assert v.issued_by_anchor(presented(pki.expired))
    assert v.issued_by_anchor(presented(pki.not_yet_valid))
    assert v.issued_by_anchor(presented(pki.allowed))
    copy = self_signed_copy(pki.expired.certificate)
    assert not v.issued_by_anchor(presented(copy))
    assert not v.issued_by_anchor(presented(pki.foreign))
    assert not Verifier([]).issued_by_anchor(presented(pki.expired))


def test_a_path_that_cannot_be_built_names_the_missing_issuer(pki: TestPki) -> None:
    leaf_only = verifier(pki).verify(presented(pki.via_intermediate, with_chain=False))
    assert isinstance(leaf_only, Rejection)
    assert leaf_only.reason == (
        "issuer CN=hookshield test intermediate CA,O=hookshield of the client certificate is in "
        "neither TRUST_ANCHORS nor INTERMEDIATES, nor in the chain the client presented"
    )
    foreign = verifier(pki).verify(presented(pki.foreign))
    assert isinstance(foreign, Rejection)
    assert foreign.reason.startswith("issuer CN=someone else's CA,O=hookshield of the client")
    rogue = verifier(pki).verify(presented(pki.rogue))
    assert isinstance(rogue, Rejection)
    assert rogue.reason.startswith("self-signed certificate ")
    assert rogue.reason.endswith(" is not a trust anchor")
