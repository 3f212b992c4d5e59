"""Rejections the guard answers with, and the exceptions of the framework-free core.

Exception tree::

    HookshieldError
    ├── ConfigurationError      a setting is invalid; names the key path
    └── SourceError             a request's certificate could not be taken (carries a code)
        ├── CertificateParseError   the header / PEM / DER is malformed
        └── ProxyVerifyError        the terminator said it did not verify the certificate

Every rejection code is stable and tied to one HTTP status; clients and dashboards key on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CODES",
    "CertificateParseError",
    "Code",
    "ConfigurationError",
    "HookshieldError",
    "ProxyVerifyError",
    "Rejection",
    "SourceError",
]


class Code(StrEnum):
    """Stable rejection codes (the ``error.code`` of a rejection's JSON body)."""

    CLIENT_CERT_MISSING = "client_cert_missing"
    CLIENT_CERT_MALFORMED = "client_cert_malformed"
    CLIENT_CERT_UNVERIFIED = "client_cert_unverified"
    CLIENT_CERT_UNTRUSTED = "client_cert_untrusted"
    CLIENT_CERT_EXPIRED = "client_cert_expired"
    CLIENT_CERT_NOT_YET_VALID = "client_cert_not_yet_valid"
    CLIENT_CERT_REVOKED = "client_cert_revoked"
    CLIENT_CERT_REVOCATION_UNKNOWN = "client_cert_revocation_unknown"
    CLIENT_CERT_TOO_LONG_LIVED = "client_cert_too_long_lived"
    IDENTITY_NOT_ALLOWED = "identity_not_allowed"
    GUARD_UNAVAILABLE = "guard_unavailable"


# code -> (HTTP status, message sent to the client). The message is deliberately generic: the
# precise reason (which check failed, on which certificate) goes to the log line only.
CODES: dict[Code, tuple[int, str]] = {
    Code.CLIENT_CERT_MISSING: (401, "A verified client certificate is required."),
    Code.CLIENT_CERT_MALFORMED: (401, "The client certificate could not be parsed."),
    Code.CLIENT_CERT_UNVERIFIED: (401, "The TLS terminator did not verify the client certificate."),
    Code.CLIENT_CERT_UNTRUSTED: (
        401,
        "The client certificate does not verify against the trust anchors "
        "(unknown issuer, self-signed, wrong key usage or not RFC 5280 conformant).",
    ),
    Code.CLIENT_CERT_EXPIRED: (401, "The client certificate has expired."),
    Code.CLIENT_CERT_NOT_YET_VALID: (401, "The client certificate is not valid yet."),
    Code.CLIENT_CERT_REVOKED: (401, "The client certificate has been revoked."),
    Code.CLIENT_CERT_REVOCATION_UNKNOWN: (
        401,
        "The revocation status of the client certificate could not be established.",
    ),
    Code.CLIENT_CERT_TOO_LONG_LIVED: (
        401,
        "The client certificate's lifetime exceeds the maximum this endpoint accepts.",
    ),
    Code.IDENTITY_NOT_ALLOWED: (403, "This client identity may not call this webhook."),
    Code.GUARD_UNAVAILABLE: (503, "The webhook guard is misconfigured; try again later."),
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal: what the client is told (code, status, message) and what is logged (reason)."""

    code: Code
    reason: str

    @property
    def status(self) -> int:
        return CODES[self.code][0]

    @property
    def message(self) -> str:
        return CODES[self.code][1]


class HookshieldError(Exception):
    """Base of every exception hookshield raises on purpose."""


class ConfigurationError(HookshieldError, ValueError):
    """A setting is invalid; the message names the key path and what was expected."""


class SourceError(HookshieldError):
    """The certificate could not be taken from the request; ``code`` says how to answer."""

    code: Code = Code.CLIENT_CERT_MALFORMED

    def rejection(self) -> Rejection:
        return Rejection(self.code, str(self))


class CertificateParseError(SourceError):
    """A header, PEM block or DER structure is malformed, oversized or ambiguous."""

    code = Code.CLIENT_CERT_MALFORMED


class ProxyVerifyError(SourceError):
    """The terminator forwarded a certificate it says it did not verify (or no verdict at all)."""

    code = Code.CLIENT_CERT_UNVERIFIED
