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
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    MALFORMED_BODY = "malformed_body"
    SCHEMA_VIOLATION = "schema_violation"
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_MALFORMED = "signature_malformed"
    SIGNATURE_INVALID = "signature_invalid"
    TIMESTAMP_OUT_OF_TOLERANCE = "timestamp_out_of_tolerance"
    DELIVERY_REPLAYED = "delivery_replayed"
    REPLAY_STORE_UNAVAILABLE = "replay_store_unavailable"
    RATE_LIMITED = "rate_limited"
    RATE_LIMIT_UNAVAILABLE = "rate_limit_unavailable"
    GUARD_UNAVAILABLE = "guard_unavailable"
    REQUEST_UNPROCESSABLE = "request_unprocessable"


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
    Code.METHOD_NOT_ALLOWED: (405, "This webhook does not accept that method."),
    Code.UNSUPPORTED_MEDIA_TYPE: (415, "This webhook does not accept that content type."),
    Code.BODY_TOO_LARGE: (413, "The body exceeds this webhook's size limit."),
    Code.MALFORMED_BODY: (400, "The body is not acceptable JSON."),
    Code.SCHEMA_VIOLATION: (422, "The payload does not match this webhook's schema."),
    Code.SIGNATURE_MISSING: (401, "The delivery carries no webhook signature."),
    Code.SIGNATURE_MALFORMED: (
        400,
        "The webhook-id, webhook-timestamp or webhook-signature header is malformed.",
    ),
    Code.SIGNATURE_INVALID: (401, "No webhook signature matches a configured key."),
    Code.TIMESTAMP_OUT_OF_TOLERANCE: (
        401,
        "The webhook timestamp is too far from the current time.",
    ),
    Code.DELIVERY_REPLAYED: (409, "This webhook-id was already delivered."),
    Code.REPLAY_STORE_UNAVAILABLE: (503, "Replay protection is unavailable; retry later."),
    Code.RATE_LIMITED: (429, "Too many deliveries from this identity; retry after Retry-After."),
    Code.RATE_LIMIT_UNAVAILABLE: (503, "Rate limiting is unavailable; retry after Retry-After."),
    Code.GUARD_UNAVAILABLE: (503, "The webhook guard is misconfigured; try again later."),
    # A bug in the guard met by this request: refused (fail closed), never a 500 page.
    Code.REQUEST_UNPROCESSABLE: (400, "The request could not be processed."),
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal: what the client is told (code, status, message) and what is logged (reason)."""

    code: Code
    reason: str
    # Response headers that belong to the refusal (Retry-After, Allow, RateLimit...).
    headers: tuple[tuple[str, str], ...] = ()
    # True when the reason is safe to show the client (it names a limit or a JSON path, never a
    # value, a certificate detail or a secret); it is then appended to the message.
    public: bool = False

    @classmethod
    def guard_unavailable(cls, reason: str) -> Rejection:
        """A 503 asking the sender to retry in a minute, by when the configuration may be fixed."""
        return cls(Code.GUARD_UNAVAILABLE, reason, headers=(("Retry-After", "60"),))

    @property
    def status(self) -> int:
        return CODES[self.code][0]

    @property
    def message(self) -> str:
        base = CODES[self.code][1]
        return f"{base} ({self.reason})" if self.public else base


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
