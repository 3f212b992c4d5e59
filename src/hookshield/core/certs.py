"""Turning PEM, DER and base64 text into certificates, strictly and at bounded cost.

Sources hand over DER bytes (``PresentedChain``); X.509 parsing happens only when the
verification cache misses, so a cache hit costs a hash, not a parse.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning

from hookshield.core.errors import CertificateParseError

__all__ = [
    "MAX_CERTS",
    "MAX_ENCODED_BYTES",
    "PresentedChain",
    "b64_der",
    "fingerprint",
    "load_chain",
    "parse_certificates",
    "pem_blocks",
]

# A header or environ value larger than this is refused before any decoding. 64 KiB holds a leaf
# and several RSA-4096 intermediates in any encoding; terminators cap lower (GCP 16 KB).
MAX_ENCODED_BYTES = 64 * 1024
# Leaf plus intermediates; real chains are 1-3 certificates.
MAX_CERTS = 8

_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"
_B64_BODY = re.compile(r"[A-Za-z0-9+/=\s]*")


@dataclass(frozen=True, slots=True)
class PresentedChain:
    """The certificates a request presents, leaf first, as DER; not verified yet.

    Attributes:
        digests: SHA-256 of each DER, computed once; the leaf's is its fingerprint, and the
            tuple keys the verification cache.
    """

    ders: tuple[bytes, ...]
    source: str
    digests: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.ders:
            raise CertificateParseError("empty certificate chain")
        if len(self.ders) > MAX_CERTS:
            raise CertificateParseError(f"chain of {len(self.ders)} certificates (max {MAX_CERTS})")
        object.__setattr__(self, "digests", tuple(hashlib.sha256(d).digest() for d in self.ders))

    @property
    def leaf(self) -> bytes:
        return self.ders[0]


def fingerprint(der: bytes) -> str:
    """SHA-256 of the DER encoding, lowercase hex (as Envoy's ``Hash`` and most tooling)."""
    return hashlib.sha256(der).hexdigest()


def check_size(value: str | bytes, what: str) -> None:
    if len(value) > MAX_ENCODED_BYTES:
        raise CertificateParseError(f"{what} is {len(value)} bytes (max {MAX_ENCODED_BYTES})")


def b64_der(value: str, what: str) -> bytes:
    """Strict, canonical standard base64 (padding required, no whitespace) of one DER value."""
    try:
        encoded = value.encode("ascii")
        der = base64.b64decode(encoded, validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise CertificateParseError(f"{what} is not strict base64") from exc
    if not der:
        raise CertificateParseError(f"{what} is empty")
    # Only the canonical encoding: no surplus padding, no stray bits in the last character.
    if base64.b64encode(der) != encoded:
        raise CertificateParseError(f"{what} is not canonical base64")
    return der


def pem_blocks(text: str, what: str) -> tuple[bytes, ...]:
    """The DER of each ``CERTIFICATE`` block; anything but whitespace outside the blocks is refused.

    Whitespace inside a block is ignored, so PEM whose line breaks a proxy turned into spaces or
    tabs (Apache ``RequestHeader``, nginx's legacy ``$ssl_client_cert``) decodes too.
    """
    check_size(text, what)
    ders: list[bytes] = []
    pos = 0
    while True:
        start = text.find(_BEGIN, pos)
        if start < 0:
            if text[pos:].strip():
                raise CertificateParseError(f"{what} has data outside PEM blocks")
            break
        if text[pos:start].strip():
            raise CertificateParseError(f"{what} has data outside PEM blocks")
        body_start = start + len(_BEGIN)
        end = text.find(_END, body_start)
        if end < 0:
            raise CertificateParseError(f"{what} has an unterminated PEM block")
        body = text[body_start:end]
        if not _B64_BODY.fullmatch(body):
            raise CertificateParseError(f"{what} has a PEM block with non-base64 content")
        ders.append(b64_der("".join(body.split()), what))
        if len(ders) > MAX_CERTS:
            raise CertificateParseError(f"{what} holds more than {MAX_CERTS} certificates")
        pos = end + len(_END)
    if not ders:
        raise CertificateParseError(f"{what} holds no PEM certificate")
    return tuple(ders)


# What cryptography raises on bytes it cannot read, at load or (lazily) at a field's first read.
_UNREADABLE = (
    ValueError,  # ASN.1 errors, bad strings (UnicodeDecodeError), bad times, bad keys
    TypeError,  # a name attribute whose string type its OID does not allow (BitString)
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
    # A serial number below 1: a warning today, raised where warnings are errors (-W error).
    CryptographyDeprecationWarning,
)


def parse_certificates(ders: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    """Parse a presented chain, leaf first; trailing bytes or a broken structure raise.

    cryptography parses some fields only when they are first read, and raises then: every field
    the guard, its verifier or its observers read is read here, once, so that nothing later
    meets an exception a client's bytes can cause.

    A list is a chain or nothing: each later certificate must be a CA certificate named as the
    issuer of the one before it (the path builder then checks the signatures). Otherwise a
    client's copy of a header joined with the proxy's (``client, proxy``) would make the
    client's certificate the leaf.
    """
    certs: list[x509.Certificate] = []
    for index, der in enumerate(ders):
        try:
            cert = x509.load_der_x509_certificate(der)
            _read_every_field(cert)
        except _UNREADABLE as exc:
            raise CertificateParseError(f"certificate {index} is not valid DER X.509") from exc
        if cert.serial_number <= 0:
            raise CertificateParseError(f"certificate {index} has a serial number below 1")
        if certs and not _issued(certs[-1], by=cert):
            raise CertificateParseError(
                f"certificate {index} is not the CA certificate that issued certificate "
                f"{index - 1} (a list of certificates must be a chain, leaf first)"
            )
        certs.append(cert)
    return tuple(certs)


def _issued(cert: x509.Certificate, *, by: x509.Certificate) -> bool:
    """``by`` is a CA certificate named as ``cert``'s issuer (signatures: the path builder's)."""
    try:
        constraints = by.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca and by.subject == cert.issuer


def _read_every_field(cert: x509.Certificate) -> None:
    cert.version  # noqa: B018  (read for its parse errors)
    cert.subject.rfc4514_string()
    cert.issuer.rfc4514_string()
    cert.not_valid_before_utc  # noqa: B018
    cert.not_valid_after_utc  # noqa: B018
    for extension in cert.extensions:
        extension.value  # noqa: B018
    cert.public_key()
    cert.signature_hash_algorithm  # noqa: B018


def load_chain(data: bytes, what: str = "certificate file") -> tuple[x509.Certificate, ...]:
    """Certificates from a file's bytes: PEM (one or more blocks, comments allowed) or one DER.

    For configuration files (trust anchors, intermediates), which may carry comments between
    blocks as CA bundles do; request data goes through the strict ``pem_blocks`` instead.
    """
    try:
        if b"-----BEGIN" in data:
            return tuple(x509.load_pem_x509_certificates(data))
        return (x509.load_der_x509_certificate(data),)
    except ValueError as exc:
        raise CertificateParseError(f"{what} holds no valid PEM or DER certificate") from exc
