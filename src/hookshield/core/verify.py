"""Re-verifying the presented chain in process, with a bounded cache keyed by fingerprint.

Path validation is cryptography's ``x509.verification`` client verifier (RFC 5280 and CA/B-style
profile checks, EKU clientAuth, validity at the verification time); hookshield adds only CRLs,
the lifetime rule and caching around it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
    VerifiedClient,
)

from hookshield.core.certs import PresentedChain, parse_certificates
from hookshield.core.errors import CertificateParseError, Code, Rejection
from hookshield.core.identity import ClientIdentity
from hookshield.core.revocation import RevocationLists

__all__ = ["LongLived", "Verified", "Verifier"]

# A refusal is cached briefly so that a client repeating a bad certificate costs a lookup, not a
# signature check, while a certificate that becomes valid (or a fixed CRL) is honoured soon.
NEGATIVE_TTL = 30.0


class LongLived(StrEnum):
    WARN = "warn"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verified:
    """A chain that verified: who it names, and whether it outlives the lifetime maximum."""

    identity: ClientIdentity
    long_lived: bool


@dataclass(frozen=True, slots=True)
class _Entry:
    result: Verified | Rejection
    expires_at: float  # epoch seconds
    generation: int


def _out_of_validity(
    leaf: x509.Certificate, now: dt.datetime, negative: float
) -> tuple[Rejection, float] | None:
    """An expired or not yet valid leaf's refusal and how long to cache it, else None."""
    if now > leaf.not_valid_after_utc:
        expired = f"expired at {leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        return Rejection(Code.CLIENT_CERT_EXPIRED, expired), negative
    if now < leaf.not_valid_before_utc:
        starts = leaf.not_valid_before_utc
        early = f"valid from {starts:%Y-%m-%dT%H:%M:%SZ}"
        return Rejection(Code.CLIENT_CERT_NOT_YET_VALID, early), min(negative, starts.timestamp())
    return None


def _name(name: x509.Name) -> str:
    text = name.rfc4514_string()
    return text if len(text) <= 200 else text[:200] + "..."


def _san_rules(policy: Policy, cert: x509.Certificate, san: object | None) -> None:
    """RFC 5280 4.2.1.6 for certificates that may omit the SAN (CN-only, by explicit opt-in)."""
    del policy
    if san is None:
        if len(cert.subject) == 0:
            raise ValueError("certificate has neither a subject nor a subjectAltName")
        return
    critical = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    if critical and len(cert.subject) > 0:
        raise ValueError("subjectAltName MUST NOT be critical when the subject is non-empty")


class Verifier:
    """Verify presented chains against trust anchors; thread-safe, with a bounded cache."""

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        *,
        intermediates: Sequence[x509.Certificate] = (),
        revocation: RevocationLists | None = None,
        max_lifetime: dt.timedelta | None = None,
        long_lived: LongLived = LongLived.WARN,
        san_optional: bool = False,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = Store(list(anchors)) if anchors else None
        self._anchor_names = frozenset(anchor.subject for anchor in anchors)
        self._intermediates = list(intermediates)
        self._revocation = revocation if revocation else None
        self._max_lifetime = max_lifetime
        self._long_lived = long_lived
        self._cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[tuple[bytes, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._ee_policy: ExtensionPolicy | None = None
        if san_optional:
            self._ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
                x509.SubjectAlternativeName, Criticality.AGNOSTIC, _san_rules
            )

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def verify(self, chain: PresentedChain) -> Verified | Rejection:
        if self._revocation is not None:
            self._revocation.refresh()
        generation = self._revocation.generation if self._revocation is not None else 0
        key = chain.digests
        now = self._clock()
        # A hit takes no lock: each OrderedDict operation is atomic, and an entry another thread
        # evicts between the two lines below was still a valid verdict when it was read.
        entry = self._cache.get(key)
        if entry is not None and entry.expires_at > now and entry.generation == generation:
            try:  # noqa: SIM105 (contextlib.suppress is a Python-level context manager: slower)
                self._cache.move_to_end(key)
            except KeyError:
                pass
            return entry.result
        if entry is not None:
            with self._lock:
                self._cache.pop(key, None)
        result, expires_at = self._verify_uncached(chain, now)
        with self._lock:
            self._cache[key] = _Entry(result, expires_at, generation)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def issued_by_anchor(self, chain: PresentedChain) -> bool:
        """Whether the chain led to a trust anchor while its leaf was valid.

        For certificates refused as expired or not yet valid, which are refused before the path
        is built: was it one of ours (worth an inventory entry), or minted by anyone?
        """
        if self._store is None:
            return False
        try:
            leaf, *presented = parse_certificates(chain.ders)
            now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
            at = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
            self._path(self._store, leaf, presented, at)
        except (CertificateParseError, VerificationError):
            return False
        return True

    def _path(
        self,
        store: Store,
        leaf: x509.Certificate,
        presented: list[x509.Certificate],
        at: dt.datetime,
    ) -> VerifiedClient:
        """The verified path from leaf to an anchor at time `at` (raises VerificationError)."""
        builder = PolicyBuilder().store(store).time(at)
        if self._ee_policy is not None:
            builder = builder.extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=self._ee_policy
            )
        return builder.build_client_verifier().verify(leaf, presented + self._intermediates)

    def _revocation_status(
        self, path: Sequence[x509.Certificate], now: dt.datetime
    ) -> tuple[Rejection | None, dt.datetime]:
        """A revoked (or unknown) certificate on the path, and until when the verdict holds."""
        expires = min(cert.not_valid_after_utc for cert in path)
        if self._revocation is None:
            return None, expires
        refused, next_update = self._revocation.check(path, now)
        if next_update is not None:
            expires = min(expires, next_update)
        return refused, expires

    def _missing_issuer(
        self, leaf: x509.Certificate, presented: list[x509.Certificate]
    ) -> str | None:
        """Name the first issuer on the way up that no configured or presented certificate is.

        The path builder only says "candidates exhausted"; an operator needs to know which CA
        certificate to add (INTERMEDIATES, most often). None when every issuer is at hand and
        the path failed for another reason (signature, constraints, key usage, validity).
        """
        pool = [*presented, *self._intermediates]
        current = leaf
        for _ in range(len(pool) + 1):
            if current.issuer in self._anchor_names:
                return None
            if current.issuer == current.subject:
                subject = _name(current.subject) or "(no subject)"
                return f"self-signed certificate {subject} is not a trust anchor"
            issuer = next((c for c in pool if c.subject == current.issuer and c != current), None)
            if issuer is None:
                of = "the client certificate" if current is leaf else _name(current.subject)
                return (
                    f"issuer {_name(current.issuer)} of {of} is in neither TRUST_ANCHORS nor "
                    "INTERMEDIATES, nor in the chain the client presented"
                )
            current = issuer
        return None

    def _verify_uncached(
        self, chain: PresentedChain, now_ts: float
    ) -> tuple[Verified | Rejection, float]:
        negative = now_ts + NEGATIVE_TTL
        try:
            leaf, *presented = parse_certificates(chain.ders)
        except CertificateParseError as exc:
            return exc.rejection(), negative
        now = dt.datetime.fromtimestamp(now_ts, dt.UTC)
        # Validity of the leaf first, for a precise code; the verifier checks the whole path too.
        out_of_time = _out_of_validity(leaf, now, negative)
        if out_of_time is not None:
            return out_of_time
        if self._store is None:
            return Rejection(
                Code.CLIENT_CERT_UNTRUSTED, "no trust anchors are configured"
            ), negative
        try:
            verified = self._path(self._store, leaf, presented, now)
        except VerificationError as exc:
            why = self._missing_issuer(leaf, presented) or str(exc)
            return Rejection(Code.CLIENT_CERT_UNTRUSTED, why), negative
        refused, expires = self._revocation_status(verified.chain, now)
        if refused is not None:
            return refused, negative
        identity = ClientIdentity.from_certificate(leaf, chain.leaf)
        long_lived = self._max_lifetime is not None and identity.lifetime > self._max_lifetime
        if long_lived and self._long_lived is LongLived.REJECT:
            days = identity.lifetime.days
            return Rejection(Code.CLIENT_CERT_TOO_LONG_LIVED, f"lifetime of {days} days"), negative
        return Verified(identity, long_lived), expires.timestamp()
