"""Standard Webhooks verification, pinned to the vectors in docs/webhook-signatures.md."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from hookshield.core.errors import Code, ConfigurationError, Rejection
from hookshield.core.signatures import (
    SignatureVerifier,
    new_ed25519_keys,
    new_hmac_secret,
    sign,
    sign_v1,
    sign_v1a,
    signed_headers,
)

SW1: dict[str, Any] = {
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "ts": 1614265330,
    "body": b'{"test": 2432232314}',
    "sig": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
SW2: dict[str, Any] = {
    "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "id": "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
    "ts": 1649367553,
    "body": b'{"email":"test@example.com","username":"test_user"}',
    "sig": "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
}
SW_A1_PRIVATE = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="  # the vector's seed
SW_A1_PUBLIC = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
SW_A1_SIG = (
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)
WRONG = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="


def meta(vector: dict[str, Any], signature: str | None = None, **override: Any) -> dict[str, Any]:
    values = {
        "HTTP_WEBHOOK_ID": vector["id"],
        "HTTP_WEBHOOK_TIMESTAMP": str(vector["ts"]),
        "HTTP_WEBHOOK_SIGNATURE": signature if signature is not None else vector["sig"],
    }
    values.update(override)
    return {k: v for k, v in values.items() if v is not None}


def verifier(*secrets: str, at: float, tolerance: int = 300) -> SignatureVerifier:
    return SignatureVerifier(list(secrets), tolerance=tolerance, clock=lambda: at)


@pytest.mark.parametrize("vector", [SW1, SW2], ids=["SW-1", "SW-2"])
def test_published_v1_vectors(vector: dict[str, Any]) -> None:
    assert sign_v1(vector["secret"], vector["id"], vector["ts"], vector["body"]) == vector["sig"]
    v = verifier(vector["secret"], at=vector["ts"])
    assert v.verify(meta(vector), vector["body"]) == vector["id"]


def code(result: str | Rejection) -> Code | None:
    return result.code if isinstance(result, Rejection) else None


@pytest.mark.parametrize(
    "signature",
    [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",  # one character off
        WRONG,
        "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= "
        "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
        "v1,",
        SW1["sig"][:8],
        "garbage",
        "v1,a,b",
        "v2," + SW1["sig"][3:],  # the right MAC under an unknown version
    ],
)
def test_wrong_or_damaged_signatures(signature: str) -> None:
    result = verifier(SW1["secret"], at=SW1["ts"]).verify(meta(SW1, signature), SW1["body"])
    assert code(result) is Code.SIGNATURE_INVALID


def test_any_matching_entry_of_several_is_enough() -> None:
    signature = f"v1,{WRONG[3:]} v2,{WRONG[3:]} {SW1['sig']} v1,{WRONG[3:]}"
    assert (
        verifier(SW1["secret"], at=SW1["ts"]).verify(meta(SW1, signature), SW1["body"]) == SW1["id"]
    )


def test_rotation_with_several_secrets() -> None:
    v = verifier(SW2["secret"], SW1["secret"], at=SW1["ts"])
    assert v.verify(meta(SW1), SW1["body"]) == SW1["id"]


def test_unpadded_secrets_are_the_same_key() -> None:
    padded = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLXRlc3QtMTIzNDU2Nzg="
    unpadded = padded.rstrip("=")
    assert unpadded != padded
    signature = sign_v1(unpadded, SW1["id"], SW1["ts"], SW1["body"])
    assert signature == sign_v1(padded, SW1["id"], SW1["ts"], SW1["body"])
    v = verifier(padded, at=SW1["ts"])
    assert v.verify(meta(SW1, signature), SW1["body"]) == SW1["id"]


def test_the_body_is_the_raw_bytes() -> None:
    reformatted = b'{"test":2432232314}'
    result = verifier(SW1["secret"], at=SW1["ts"]).verify(meta(SW1), reformatted)
    assert code(result) is Code.SIGNATURE_INVALID


def test_ed25519_v1a_vector() -> None:
    v = verifier(SW_A1_PUBLIC, at=SW1["ts"])
    assert v.verify(meta(SW1, SW_A1_SIG), SW1["body"]) == SW1["id"]
    flipped = SW_A1_SIG.replace("tQ9V", "tQ9W")
    assert code(v.verify(meta(SW1, flipped), SW1["body"])) is Code.SIGNATURE_INVALID
    # A v1a entry is never checked against HMAC secrets, nor v1 against public keys.
    assert (
        code(verifier(SW1["secret"], at=SW1["ts"]).verify(meta(SW1, SW_A1_SIG), SW1["body"]))
        is Code.SIGNATURE_INVALID
    )
    assert code(v.verify(meta(SW1), SW1["body"])) is Code.SIGNATURE_INVALID


def test_ed25519_v1a_signing_vector() -> None:
    assert sign_v1a(SW_A1_PRIVATE, SW1["id"], SW1["ts"], SW1["body"]) == SW_A1_SIG
    assert sign(SW_A1_PRIVATE, SW1["id"], SW1["ts"], SW1["body"]) == SW_A1_SIG
    assert sign(SW1["secret"], SW1["id"], SW1["ts"], SW1["body"]) == SW1["sig"]


def headers_as_meta(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


@pytest.mark.parametrize(
    ("key", "public"), [(SW1["secret"], SW1["secret"]), (SW_A1_PRIVATE, SW_A1_PUBLIC)]
)
def test_signed_headers_verify_and_carry_a_fresh_id(key: str, public: str) -> None:
    body = b'{"type": "payment.succeeded"}'
    first = signed_headers(key, body, clock=lambda: 1_700_000_000.7)
    second = signed_headers(key, body, clock=lambda: 1_700_000_000.7)
    assert first["webhook-timestamp"] == "1700000000"
    assert first["webhook-id"] != second["webhook-id"]
    assert first["webhook-id"].startswith("msg_")
    result = verifier(public, at=1_700_000_000).verify(headers_as_meta(first), body)
    assert result == first["webhook-id"]
    fixed = signed_headers(key, body, msg_id="msg_fixed", timestamp=SW1["ts"])
    assert fixed["webhook-id"] == "msg_fixed"
    assert fixed["webhook-timestamp"] == str(SW1["ts"])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (SW_A1_PUBLIC, "whpk_ key is public"),
        ("whsk_AAAA", "32-byte Ed25519 seed"),  # 3 bytes
        ("whsk_!!!!", "not a Standard Webhooks signing key"),
        ("whsec_é", "not a Standard Webhooks signing key"),
        ("whsec_!!!", "not a Standard Webhooks signing key"),
        ("sk_live_abc", "not a Standard Webhooks signing key"),
    ],
)
def test_keys_that_cannot_sign_raise_without_the_value(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        sign(key, "msg_1", 0, b"")
    assert key.split("_")[-1] not in str(info.value)


def test_new_hmac_secrets_are_fresh_and_verify() -> None:
    secret = new_hmac_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_hmac_secret() != secret
    assert len(base64.b64decode(new_hmac_secret(64).removeprefix("whsec_"))) == 64
    body = b'{"type": "x"}'
    headers = signed_headers(secret, body, clock=lambda: SW1["ts"])
    assert (
        verifier(secret, at=SW1["ts"]).verify(headers_as_meta(headers), body)
        == (headers["webhook-id"])
    )
    for size in (23, 65):
        with pytest.raises(ValueError, match="24 to 64"):
            new_hmac_secret(size)


def test_new_ed25519_keys_pair_up() -> None:
    private, public = new_ed25519_keys()
    assert private.startswith("whsk_")
    assert public.startswith("whpk_")
    assert new_ed25519_keys()[0] != private
    body = b'{"type": "x"}'
    headers = signed_headers(private, body, clock=lambda: SW1["ts"])
    assert headers["webhook-signature"].startswith("v1a,")
    assert (
        verifier(public, at=SW1["ts"]).verify(headers_as_meta(headers), body)
        == (headers["webhook-id"])
    )
    other_public = new_ed25519_keys()[1]
    result = verifier(other_public, at=SW1["ts"]).verify(headers_as_meta(headers), body)
    assert code(result) is Code.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("skew", "accepted"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)]
)
def test_the_window_holds_in_both_directions(skew: int, accepted: bool) -> None:
    result = verifier(SW1["secret"], at=SW1["ts"] + skew).verify(meta(SW1), SW1["body"])
    if accepted:
        assert result == SW1["id"]
    else:
        assert code(result) is Code.TIMESTAMP_OUT_OF_TOLERANCE
        assert isinstance(result, Rejection)
        assert "301 s" in result.message


def test_a_custom_tolerance() -> None:
    result = verifier(SW1["secret"], at=SW1["ts"] + 61, tolerance=60).verify(meta(SW1), SW1["body"])
    assert code(result) is Code.TIMESTAMP_OUT_OF_TOLERANCE


def test_missing_and_malformed_headers() -> None:
    v = verifier(SW1["secret"], at=SW1["ts"])
    assert code(v.verify({}, SW1["body"])) is Code.SIGNATURE_MISSING
    for broken in (
        meta(SW1, HTTP_WEBHOOK_ID=None),
        meta(SW1, HTTP_WEBHOOK_SIGNATURE=None),
        meta(SW1, HTTP_WEBHOOK_TIMESTAMP=None),
        meta(SW1, HTTP_WEBHOOK_TIMESTAMP="hello"),
        meta(SW1, HTTP_WEBHOOK_TIMESTAMP=f"{SW1['ts']}.9"),  # the package accepts this; we do not
        meta(SW1, HTTP_WEBHOOK_TIMESTAMP=f"-{SW1['ts']}"),
        meta(SW1, HTTP_WEBHOOK_ID="msg.with.dots"),
        meta(SW1, HTTP_WEBHOOK_ID="a,b"),
        meta(SW1, HTTP_WEBHOOK_ID="x" * 257),
        meta(SW1, HTTP_WEBHOOK_SIGNATURE="v1," + "A" * 5000),
    ):
        result = v.verify(broken, SW1["body"])
        assert code(result) is Code.SIGNATURE_MALFORMED, broken


def test_the_official_package_signs_and_hookshield_verifies() -> None:
    secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3QtMTIzNDU2Nzg="
    # The package checks its own wall clock, so both directions sign "now".
    when = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = '{"type": "invoice.paid", "amount": 1200}'
    signature = Webhook(secret).sign("msg_official_1", when, body)
    v = verifier(secret, at=when.timestamp())
    headers = {
        "HTTP_WEBHOOK_ID": "msg_official_1",
        "HTTP_WEBHOOK_TIMESTAMP": str(int(when.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }
    assert v.verify(headers, body.encode()) == "msg_official_1"
    # And the other way round: what hookshield signs, the package verifies.
    ours = sign_v1(secret, "msg_official_2", int(when.timestamp()), body.encode())
    package_headers = {
        "webhook-id": "msg_official_2",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": ours,
    }
    assert Webhook(secret).verify(body, package_headers) == {"type": "invoice.paid", "amount": 1200}


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        (["whsec_c2hvcnQ="], "decodes to 5 bytes"),
        (["sk_live_abc"], "must start with 'whsec_'"),
        (["whpk_AAAA"], "32-byte Ed25519"),
        (["whsec_!!!"], "not valid base64"),
        ([], "is empty"),
    ],
)
def test_bad_keys_are_configuration_errors_that_hide_the_value(
    secrets: list[str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        SignatureVerifier(secrets)
    for secret in secrets:
        assert secret.split("_", 1)[-1] not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=40)),
    st.one_of(st.none(), st.text(max_size=20), st.integers(0, 2**40).map(str)),
    st.one_of(st.none(), st.text(max_size=200)),
    st.binary(max_size=64),
)
def test_verify_never_raises(
    msg_id: str | None, stamp: str | None, signature: str | None, body: bytes
) -> None:
    headers = {
        k: v
        for k, v in (
            ("HTTP_WEBHOOK_ID", msg_id),
            ("HTTP_WEBHOOK_TIMESTAMP", stamp),
            ("HTTP_WEBHOOK_SIGNATURE", signature),
        )
        if v is not None
    }
    result = verifier(SW1["secret"], SW_A1_PUBLIC, at=SW1["ts"]).verify(headers, body)
    assert isinstance(result, Rejection)
