"""How the scanner signs a delivery, per scheme, so receivers with their own signatures can be
scanned (``--signature-scheme``).

Each scheme turns (secret, body, delivery id, timestamp) into the headers its receivers verify.
A scheme with a signed timestamp lets ``replay.stale-timestamp`` re-sign a stale delivery; every
scheme lets ``replay.duplicate-accepted`` re-send one unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from hookshield.core.signatures import sign, signed_headers

__all__ = ["Scheme", "Signer"]


class Scheme(StrEnum):
    STANDARD = "standard"  # Standard Webhooks: webhook-id, -timestamp, -signature (v1 or v1a)
    GITHUB = "github"  # X-Hub-Signature-256: sha256=<hex HMAC of the body>, X-GitHub-Delivery
    STRIPE = "stripe"  # Stripe-Signature: t=<ts>,v1=<hex HMAC of "<ts>.<body>">
    SLACK = (
        "slack"  # X-Slack-Signature: v0=<hex HMAC of "v0:<ts>:<body>">, X-Slack-Request-Timestamp
    )
    HMAC = "hmac"  # <--signature-header>: <hex HMAC-SHA256 of the body>


_TIMESTAMPED = frozenset({Scheme.STANDARD, Scheme.STRIPE, Scheme.SLACK})
DEFAULT_HMAC_HEADER = "X-Signature"


def _hex_hmac(secret: str, message: bytes) -> str:
    # Every scheme but Standard Webhooks keys the HMAC with the secret's UTF-8 bytes as given.
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Signer:
    scheme: Scheme
    secret: str = field(repr=False)
    header: str = DEFAULT_HMAC_HEADER  # the generic HMAC scheme's header

    def __post_init__(self) -> None:
        """A secret the scheme cannot use fails now (the value is never shown)."""
        if not self.secret:
            raise ValueError("an empty signing secret")
        if self.scheme is Scheme.STANDARD:
            try:
                sign(self.secret, "msg_check", 0, b"")
            except ValueError as exc:  # its messages name the key's kind, never its value
                raise ValueError(str(exc)) from None

    @property
    def timestamped(self) -> bool:
        """Whether the scheme signs a timestamp (a stale one can then be refused)."""
        return self.scheme in _TIMESTAMPED

    def headers(
        self, body: bytes, *, delivery_id: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """The headers that sign ``body`` as one delivery (a fresh id and now unless given)."""
        stamp = int(time.time()) if timestamp is None else timestamp
        if self.scheme is Scheme.STANDARD:
            return signed_headers(self.secret, body, msg_id=delivery_id, timestamp=stamp)
        if self.scheme is Scheme.GITHUB:
            return {
                "X-Hub-Signature-256": "sha256=" + _hex_hmac(self.secret, body),
                "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            }
        if self.scheme is Scheme.STRIPE:
            mac = _hex_hmac(self.secret, f"{stamp}.".encode() + body)
            return {"Stripe-Signature": f"t={stamp},v1={mac}"}
        if self.scheme is Scheme.SLACK:
            return {
                "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": "v0=" + _hex_hmac(self.secret, f"v0:{stamp}:".encode() + body),
            }
        return {self.header: _hex_hmac(self.secret, body)}
