"""Standard Webhooks signatures: ``v1`` (HMAC-SHA256) and ``v1a`` (Ed25519), with a time window.

Implemented on ``hmac`` and ``cryptography`` rather than on the ``standardwebhooks`` package: that
package has no ``v1a``, a fixed five-minute window, accepts fractional timestamps and lets raw
``ValueError``/``UnicodeDecodeError`` escape on malformed headers, so a wrapper would be as long as
this module. The scheme itself is a few lines of spec; the tests pin it to the published vectors
and to signatures made by the official package.

Signed content: ``{webhook-id}.{webhook-timestamp}.{raw body}``. ``webhook-signature`` is a
space-separated list of ``version,base64`` entries (several during key rotation); entries of
unknown versions are skipped; any match is enough.

Keys, as the spec shows them to users: ``whsec_`` + base64 of a random HMAC secret (24 to 64
bytes), ``whsk_`` + base64 of a 32-byte Ed25519 seed (the sender's private key, as the Go
implementation of the ``v1a`` proposal reads it), ``whpk_`` + base64 of its 32-byte public key.
The sending side (``sign``, ``signed_headers``) serves the scanner, ``hookshield send`` and the
tests; ``new_hmac_secret`` and ``new_ed25519_keys`` serve ``hookshield secret`` and the demo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hookshield.core.errors import Code, ConfigurationError, Rejection

__all__ = [
    "DEFAULT_TOLERANCE",
    "SignatureVerifier",
    "new_ed25519_keys",
    "new_hmac_secret",
    "sign",
    "sign_v1",
    "sign_v1a",
    "signed_headers",
]

DEFAULT_TOLERANCE = 300
MIN_SECRET_BYTES = 24  # the spec's minimum for v1 secrets
MAX_SECRET_BYTES = 64  # and its maximum
MAX_SIGNATURE_HEADER = 4096
MAX_ENTRIES = 32
_ID = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no spaces
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

_ID_KEY = "HTTP_WEBHOOK_ID"
_TIMESTAMP_KEY = "HTTP_WEBHOOK_TIMESTAMP"
_SIGNATURE_KEY = "HTTP_WEBHOOK_SIGNATURE"


def _b64(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    return base64.b64decode(padded.encode("ascii"), validate=True)


def sign_v1(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature entry for a delivery under a ``whsec_`` secret (prefix optional)."""
    key = _b64(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def sign_v1a(private_key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1a`` signature entry for a delivery under a ``whsk_`` Ed25519 private key."""
    seed = _b64(private_key.removeprefix("whsk_"))
    if len(seed) != 32:
        raise ValueError("a whsk_ key is the base64 of a 32-byte Ed25519 seed (value not shown)")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(signed)
    return "v1a," + base64.b64encode(signature).decode("ascii")


def sign(key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The signature entry for a delivery: ``v1a`` under a ``whsk_`` key, else ``v1``.

    Raises ``ValueError``, never showing the key, when it cannot sign.
    """
    if key.startswith("whpk_"):
        raise ValueError(
            "a whpk_ key is public: the receiver verifies with it; sign with its whsk_ private key"
        )
    try:
        if key.startswith("whsk_"):
            return sign_v1a(key, msg_id, timestamp, body)
        return sign_v1(key, msg_id, timestamp, body)
    except (binascii.Error, UnicodeError) as exc:  # what base64 decoding raises
        raise ValueError(
            "not a Standard Webhooks signing key: 'whsec_' (HMAC secret) or 'whsk_' (Ed25519 "
            "private key) followed by base64 (value not shown)"
        ) from exc


def signed_headers(
    key: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery of ``body``, signed with ``key``.

    A fresh ``webhook-id`` and the current time unless given; every delivery needs its own id,
    since receivers refuse an id they have seen (replay protection).
    """
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(clock()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(key, msg_id, stamp, body),
    }


def new_hmac_secret(size: int = 32) -> str:
    """A fresh ``whsec_`` secret of ``size`` random bytes (24 to 64, as the spec allows)."""
    if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def new_ed25519_keys() -> tuple[str, str]:
    """A fresh Ed25519 key pair: the sender's ``whsk_`` private key, the receiver's ``whpk_``."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (
        "whsk_" + base64.b64encode(seed).decode("ascii"),
        "whpk_" + base64.b64encode(public).decode("ascii"),
    )


@dataclass(frozen=True, slots=True)
class _Keys:
    hmac_keys: tuple[bytes, ...]
    public_keys: tuple[Ed25519PublicKey, ...]


def _key_bytes(encoded: str, at: str) -> bytes:
    try:
        return _b64(encoded)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(
            f"{at} is not valid base64 key material (value not shown)"
        ) from exc


def _parse_keys(secrets: Sequence[str], where: str) -> _Keys:
    hmac_keys: list[bytes] = []
    public_keys: list[Ed25519PublicKey] = []
    for index, secret in enumerate(secrets):
        at = f"{where}[{index}]"
        if isinstance(secret, str) and secret.startswith("whsec_"):
            key = _key_bytes(secret.removeprefix("whsec_"), at)
            if len(key) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    f"{at} decodes to {len(key)} bytes; Standard Webhooks secrets have at least "
                    f"{MIN_SECRET_BYTES} (value not shown)"
                )
            hmac_keys.append(key)
        elif isinstance(secret, str) and secret.startswith("whpk_"):
            raw = _key_bytes(secret.removeprefix("whpk_"), at)
            if len(raw) != 32:
                raise ConfigurationError(f"{at} is not a 32-byte Ed25519 public key")
            public_keys.append(Ed25519PublicKey.from_public_bytes(raw))
        else:
            raise ConfigurationError(
                f"{at} must start with 'whsec_' (HMAC secret) or 'whpk_' (Ed25519 public key); "
                "value not shown"
            )
    if not hmac_keys and not public_keys:
        raise ConfigurationError(f"{where} is empty")
    return _Keys(tuple(hmac_keys), tuple(public_keys))


class SignatureVerifier:
    """Verifies a delivery's Standard Webhooks headers against an endpoint's keys."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        tolerance: int = DEFAULT_TOLERANCE,
        where: str = "SIGNING_SECRETS",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = _parse_keys(secrets, where)
        self.tolerance = tolerance
        self._clock = clock

    def verify(self, meta: Mapping[str, Any], body: bytes) -> str | Rejection:
        """The delivery's ``webhook-id`` when a signature matches; otherwise why not."""
        values = [meta.get(k) for k in (_ID_KEY, _TIMESTAMP_KEY, _SIGNATURE_KEY)]
        if all(v is None for v in values):
            return Rejection(Code.SIGNATURE_MISSING, "no webhook-id/-timestamp/-signature headers")
        headers = _well_formed(*values)
        if isinstance(headers, Rejection):
            return headers
        msg_id, stamp, signatures = headers
        skew = abs(self._clock() - int(stamp))
        if skew > self.tolerance:
            return Rejection(
                Code.TIMESTAMP_OUT_OF_TOLERANCE,
                f"timestamp {int(skew)} s away from now (tolerance {self.tolerance} s)",
                public=True,
            )
        signed = f"{msg_id}.{stamp}.".encode() + body
        if self._matches(signed, signatures.split(" ")[:MAX_ENTRIES]):
            return msg_id
        return Rejection(Code.SIGNATURE_INVALID, "no signature entry matches a configured key")

    @staticmethod
    def delivery_id(meta: Mapping[str, Any]) -> str | None:
        """The ``webhook-id`` if the three headers are well formed; nothing is verified yet."""
        headers = _well_formed(*(meta.get(k) for k in (_ID_KEY, _TIMESTAMP_KEY, _SIGNATURE_KEY)))
        return None if isinstance(headers, Rejection) else headers[0]

    def _matches(self, signed: bytes, entries: Sequence[str]) -> bool:
        macs = [hmac.new(key, signed, hashlib.sha256).digest() for key in self._keys.hmac_keys]
        for entry in entries:
            version, _, encoded = entry.partition(",")
            try:
                candidate = _b64(encoded) if encoded else b""
            except (binascii.Error, ValueError):
                continue  # a damaged entry is skipped, like an unknown version
            if version == "v1" and len(candidate) == hashlib.sha256().digest_size:
                if any(hmac.compare_digest(candidate, mac) for mac in macs):
                    return True
            elif (
                version == "v1a"
                and len(candidate) == 64
                and self._signed_by_a_key(candidate, signed)
            ):
                return True
        return False

    def _signed_by_a_key(self, signature: bytes, signed: bytes) -> bool:
        for public_key in self._keys.public_keys:
            try:
                public_key.verify(signature, signed)
            except InvalidSignature:
                continue
            return True
        return False


def _well_formed(msg_id: Any, stamp: Any, signatures: Any) -> tuple[str, str, str] | Rejection:
    """The three headers, each of the form Standard Webhooks gives it, or what is wrong."""
    if not isinstance(msg_id, str) or not _ID.fullmatch(msg_id) or "." in msg_id or "," in msg_id:
        return _malformed("webhook-id is missing, too long or holds '.', ',' or spaces")
    if not isinstance(stamp, str) or not _TIMESTAMP.fullmatch(stamp):
        return _malformed("webhook-timestamp is not whole Unix seconds")
    if not isinstance(signatures, str) or not signatures or len(signatures) > MAX_SIGNATURE_HEADER:
        return _malformed("webhook-signature is missing or too long")
    return msg_id, stamp, signatures


def _malformed(reason: str) -> Rejection:
    return Rejection(Code.SIGNATURE_MALFORMED, reason, public=True)
