"""Who a verified client certificate names: the frozen ``ClientIdentity``.

Identity comes from the parsed certificate only, never from DN or SAN strings a proxy forwarded.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from hookshield.core.certs import fingerprint

__all__ = ["ClientIdentity", "is_spiffe_id"]

# SPIFFE-ID standard: trust domain of lowercase letters, digits, '.', '-', '_'; path segments of
# letters, digits, '.', '-', '_'; no empty, '.' or '..' segments, no trailing '/', no
# percent-encoding, no userinfo/port/query/fragment (none of those characters can match).
_TRUST_DOMAIN = r"[a-z0-9._-]{1,255}"
_SEGMENT = r"[A-Za-z0-9._-]+"
_SPIFFE_ID = re.compile(rf"spiffe://{_TRUST_DOMAIN}(?:/{_SEGMENT})+")
_MAX_SPIFFE_ID = 2048


def is_spiffe_id(value: str) -> bool:
    """True for a SPIFFE ID that may name a workload (so it has a path)."""
    if len(value) > _MAX_SPIFFE_ID or not _SPIFFE_ID.fullmatch(value):
        return False
    return all(segment not in {".", ".."} for segment in value.split("/")[3:])


def _sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return (
        tuple(san.get_values_for_type(x509.DNSName)),
        tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
    )


def _may_sign(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return usage.key_cert_sign or usage.crl_sign


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The identity of a client certificate.

    Attributes:
        spiffe_id: set only when the certificate is a valid X509-SVID: exactly one URI SAN, a
            SPIFFE ID with a workload path, no certificate- or CRL-signing key usage.
        common_names: every CN in the subject; CN matching needs exactly one.
        fingerprint: SHA-256 of the DER, lowercase hex.
    """

    fingerprint: str
    spiffe_id: str | None
    dns_sans: tuple[str, ...]
    uri_sans: tuple[str, ...]
    subject: str
    common_names: tuple[str, ...]
    issuer: str
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def from_certificate(cls, cert: x509.Certificate, der: bytes | None = None) -> ClientIdentity:
        dns_sans, uri_sans = _sans(cert)
        spiffe_id = None
        if len(uri_sans) == 1 and is_spiffe_id(uri_sans[0]) and not _may_sign(cert):
            spiffe_id = uri_sans[0]
        common_names = tuple(
            str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
        return cls(
            fingerprint=fingerprint(der if der is not None else cert.public_bytes(Encoding.DER)),
            spiffe_id=spiffe_id,
            dns_sans=dns_sans,
            uri_sans=uri_sans,
            subject=cert.subject.rfc4514_string(),
            common_names=common_names,
            issuer=cert.issuer.rfc4514_string(),
            serial=cert.serial_number,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )

    @property
    def name(self) -> str:
        """A short label for logs: the SPIFFE ID, else the first SAN, else the subject."""
        for candidate in (self.spiffe_id, *self.dns_sans, *self.uri_sans, self.subject):
            if candidate:
                return candidate
        return f"sha256:{self.fingerprint}"

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before
