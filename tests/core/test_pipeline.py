from __future__ import annotations

import dataclasses
import io
import logging
import time
from typing import Any, cast

import pytest
import redis

from hookshield.core.errors import Code, Rejection
from hookshield.core.payload import InputRules, Schema
from hookshield.core.pipeline import READ_AHEAD, Endpoint, Guard, Webhook, accepted_webhook
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust, parse_networks
from hookshield.core.ratelimit import PendingHit, RateLimiter, parse_rates
from hookshield.core.replay import MemoryReplayStore, RedisReplayStore, replay_key
from hookshield.core.signatures import SignatureVerifier, sign_v1
from hookshield.core.sources import Inbound, build_source
from hookshield.core.verify import Verifier
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki

SECRET = "proxy-secret-for-pipeline-tests-0001"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def guard(pki: TestPki, *, secrets: tuple[str, ...] = ()) -> Guard:
    return Guard(
        source=build_source("nginx"),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"]), secrets=secrets),
        verifier=Verifier([pki.root.certificate]),
        endpoints={"payments": Endpoint("payments", Allowlist.parse([ALLOWED]))},
    )


def from_proxy(cert, peer: str = "127.0.0.1", **extra: str) -> Inbound:
    meta = {
        "HTTP_X_SSL_CLIENT_CERT": encodings.nginx_escaped(cert),
        "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        **extra,
    }
    return Inbound(peer=peer, meta=meta, read=io.BytesIO(b"{}").read)


def test_allowed_identity_is_accepted_and_logged(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    result = guard(pki).check(from_proxy(pki.allowed.certificate), "payments")
    assert isinstance(result, Webhook)
    assert result.matched == ALLOWED
    (record,) = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert record.levelno == logging.INFO
    fields = record.hookshield  # type: ignore[attr-defined]
    assert fields["outcome"] == "accepted"
    assert fields["identity"] == ALLOWED
    assert fields["fingerprint"] == result.identity.fingerprint
    assert f"identity={ALLOWED}" in record.getMessage()


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("other", Code.IDENTITY_NOT_ALLOWED),
        ("rogue", Code.CLIENT_CERT_UNTRUSTED),
        ("expired", Code.CLIENT_CERT_EXPIRED),
    ],
)
def test_refusals_are_logged_once_with_their_reason(
    pki: TestPki, caplog: pytest.LogCaptureFixture, which: str, code: Code
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    result = guard(pki).check(from_proxy(getattr(pki, which).certificate), "payments")
    assert isinstance(result, Rejection)
    assert result.code is code
    (record,) = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert record.hookshield["code"] == code  # type: ignore[attr-defined]
    assert record.hookshield["reason"] == result.reason  # type: ignore[attr-defined]


def test_headers_from_an_untrusted_peer_are_ignored_and_reported(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    result = guard(pki).check(from_proxy(pki.allowed.certificate, peer="203.0.113.9"), "payments")
    assert isinstance(result, Rejection)
    assert result.code is Code.CLIENT_CERT_MISSING
    spoof = [r for r in caplog.records if r.name == "hookshield.source"]
    assert len(spoof) == 1
    assert spoof[0].levelno == logging.WARNING
    assert "203.0.113.9" in spoof[0].getMessage()


def test_no_spoofing_notice_without_certificate_headers(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    result = guard(pki).check(Inbound(peer="203.0.113.9", meta={}), "payments")
    assert isinstance(result, Rejection)
    assert not [r for r in caplog.records if r.name == "hookshield.source"]


def test_the_proxy_secret_never_reaches_a_log_line(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    g = guard(pki, secrets=(SECRET,))
    ok = g.check(
        from_proxy(pki.allowed.certificate, HTTP_X_HOOKSHIELD_PROXY_SECRET=SECRET), "payments"
    )
    assert isinstance(ok, Webhook)
    wrong = SECRET[:-1] + "X"
    refused = g.check(
        from_proxy(pki.allowed.certificate, HTTP_X_HOOKSHIELD_PROXY_SECRET=wrong), "payments"
    )
    assert isinstance(refused, Rejection)
    assert len(caplog.records) >= 2  # both decisions were logged
    for record in caplog.records:
        text = record.getMessage() + repr(getattr(record, "hookshield", ""))
        assert SECRET not in text
        assert wrong not in text


def test_an_unknown_endpoint_fails_closed(pki: TestPki) -> None:
    result = guard(pki).check(from_proxy(pki.allowed.certificate), "nope")
    assert isinstance(result, Rejection)
    assert result.code is Code.GUARD_UNAVAILABLE
    assert result.status == 503
    assert ("Retry-After", "60") in result.headers


def test_log_lines_escape_hostile_identities(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    sneaky = pki.root.issue_client(dns_names=["evil.example\nwebhook_decision outcome=accepted"])
    guard(pki).check(from_proxy(sneaky.certificate), "payments")
    (record,) = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert "\n" not in record.getMessage()


def signed_guard(pki: TestPki, name: str, **steps: Any) -> Guard:
    endpoint = Endpoint(
        name,
        Allowlist.parse([ALLOWED]),
        rates=parse_rates("100/minute", "RATE"),
        signatures=SignatureVerifier([SIGNING_SECRET]),
    )
    return Guard(
        source=build_source("nginx"),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"])),
        verifier=Verifier([pki.root.certificate]),
        endpoints={name: endpoint},
        **steps,
    )


def signed_delivery(
    pki: TestPki,
    delivery_id: str,
    body: bytes = b"{}",
    *,
    declared: bool = True,
    signature: str | None = None,
) -> Inbound:
    """``body`` with its Content-Length unless not ``declared``; ``signature`` replaces its
    own."""
    stamp = int(time.time())
    inbound = from_proxy(
        pki.allowed.certificate,
        CONTENT_LENGTH=str(len(body)),
        HTTP_WEBHOOK_ID=delivery_id,
        HTTP_WEBHOOK_TIMESTAMP=str(stamp),
        HTTP_WEBHOOK_SIGNATURE=signature or sign_v1(SIGNING_SECRET, delivery_id, stamp, body),
    )
    if not declared:
        inbound.meta = {k: v for k, v in inbound.meta.items() if k != "CONTENT_LENGTH"}
    return dataclasses.replace(inbound, read=io.BytesIO(body).read)


def joint_guard(
    pki: TestPki, redis_url: str, name: str, rate: str = "100/minute", **rules: Any
) -> Guard:
    """A signed, rated endpoint whose replay claims ride with the rate count on ``redis_url``
    (with memory://, the replay store in memory); ``rules``: its ``InputRules``."""
    limiter = RateLimiter(redis_url)
    replay = RedisReplayStore.sharing(limiter.redis) if limiter.redis else MemoryReplayStore()
    joint = signed_guard(pki, name, limiter=limiter, replay=replay)
    joint.endpoints[name] = dataclasses.replace(
        joint.endpoints[name], rates=parse_rates(rate, "RATE"), rules=InputRules(**rules)
    )
    return joint


def in_use(joint: Guard) -> int:
    """Connections of the limiter's pool checked out and not given back."""
    storage = joint.limiter.redis
    assert storage is not None
    client: Any = storage.get_connection()
    return len(client.connection_pool._in_use_connections)


@pytest.mark.parametrize("declared", [True, False], ids=["read-ahead", "read-after"])
def test_a_claim_made_with_the_rate_count_is_given_back_whatever_happens_next(
    pki: TestPki, redis_url: str, unique: str, declared: bool
) -> None:
    """The id is claimed before the body is read; a body that cannot be read (here, a bug
    raising, while Redis counts or after its answer) must not keep the sender's real delivery
    out, nor a connection of the pool."""
    joint = joint_guard(pki, redis_url, unique)

    def broken(size: int) -> bytes:
        raise RuntimeError("a bug while reading")

    for _ in range(3):
        inbound = signed_delivery(pki, "msg_1", declared=declared)
        inbound = dataclasses.replace(inbound, read=broken)
        with pytest.raises(RuntimeError):
            joint.check(inbound, unique)
        assert in_use(joint) == 0
    assert isinstance(joint.check(signed_delivery(pki, "msg_1"), unique), Webhook)  # given back
    assert isinstance(joint.check(signed_delivery(pki, "msg_1"), unique), Rejection)


class Recorded:
    """The limiter's pending hit, noting when the guard reads its answer."""

    def __init__(self, pending: PendingHit, events: list[str]) -> None:
        self._pending, self._events = pending, events
        self.in_flight = pending.in_flight

    def result(self) -> tuple[Rejection | None, bool | None]:
        self._events.append("answered")
        self.in_flight = False
        return self._pending.result()


def recording(joint: Guard, inbound: Inbound) -> tuple[Inbound, list[str]]:
    """``inbound`` whose body reads, and ``joint``'s hits, leave their marks in one list."""
    events: list[str] = []
    start_hit = joint.limiter.start_hit

    def started(*args: Any) -> Any:
        events.append("sent")
        return Recorded(start_hit(*args), events)

    joint.limiter.start_hit = started  # type: ignore[method-assign,assignment]
    read = inbound.read

    def reading(size: int) -> bytes:
        events.append("read")
        return read(size)

    return dataclasses.replace(inbound, read=reading), events


AFTER = ["sent", "answered", "read"]


@pytest.mark.parametrize(
    ("case", "size", "order"),
    [
        ("short", READ_AHEAD, ["sent", "read", "answered"]),
        ("long", READ_AHEAD + 1, AFTER),
        ("undeclared", 100, AFTER),
        ("schema", 100, AFTER),  # a user's schema may cost more than the body's size says
        ("memory", 100, AFTER),  # nothing in flight
        ("cluster", 100, AFTER),  # a client that runs the command at once
    ],
)
def test_a_short_declared_body_is_read_while_redis_counts(
    pki: TestPki, redis_url: str, unique: str, case: str, size: int, order: list[str]
) -> None:
    rules: dict[str, Any] = {}
    if case == "schema":
        rules["schema"] = Schema({"type": "object"}, "SCHEMA")
    joint = joint_guard(pki, "memory://" if case == "memory" else redis_url, unique, **rules)
    if case == "cluster":
        script = joint.limiter._script
        assert script is not None
        assert script.deferred
        script.deferred = False
    body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
    assert len(body) == size
    inbound = signed_delivery(pki, "msg_1", body, declared=case != "undeclared")
    inbound, events = recording(joint, inbound)
    accepted = joint.check(inbound, unique)
    assert isinstance(accepted, Webhook)
    assert accepted.body == body
    assert events[:3] == order
    if case != "memory":
        assert in_use(joint) == 0


@pytest.mark.parametrize("flaw", ["malformed body", "bad signature"])
def test_the_rate_answers_first_over_a_body_read_ahead(
    pki: TestPki, redis_url: str, unique: str, flaw: str
) -> None:
    """Over its rate, a caller is told 429 whatever its body, read while Redis counted, was;
    no claim is made for it."""
    joint = joint_guard(pki, redis_url, unique, rate="1/minute")
    assert isinstance(joint.check(signed_delivery(pki, "msg_1"), unique), Webhook)
    if flaw == "malformed body":
        inbound = signed_delivery(pki, "msg_2", b"{")
    else:
        inbound = signed_delivery(pki, "msg_2", signature="v1,AAAA")
    inbound, events = recording(joint, inbound)
    refused = joint.check(inbound, unique)
    assert events[:3] == ["sent", "read", "answered"]
    assert isinstance(refused, Rejection)
    assert refused.code is Code.RATE_LIMITED
    assert in_use(joint) == 0
    client = redis.Redis.from_url(redis_url)
    assert not client.exists(replay_key(unique, "msg_2"))
    client.close()


def test_over_its_rate_a_caller_gets_429_even_when_reading_ahead_raises(
    pki: TestPki, redis_url: str, unique: str
) -> None:
    joint = joint_guard(pki, redis_url, unique, rate="1/minute")
    assert isinstance(joint.check(signed_delivery(pki, "msg_1"), unique), Webhook)

    def broken(size: int) -> bytes:
        raise RuntimeError("a bug while reading")

    inbound = dataclasses.replace(signed_delivery(pki, "msg_2"), read=broken)
    refused = joint.check(inbound, unique)
    assert isinstance(refused, Rejection)
    assert refused.code is Code.RATE_LIMITED
    assert in_use(joint) == 0


def test_a_pending_hit_that_failed_fails_again_rather_than_admit() -> None:
    calls = []

    def finish() -> tuple[Rejection | None, bool | None]:
        calls.append(1)
        raise RuntimeError("a bug while reading the answer")

    pending = PendingHit(finish=finish)
    assert pending.in_flight
    for _ in range(2):
        with pytest.raises(RuntimeError):
            pending.result()
    assert not pending.in_flight
    assert calls == [1]  # the answer is read once


def test_the_release_after_a_failed_view_deletes_its_own_claim_only(pki: TestPki) -> None:
    """A view that ran past its claim's expiry (twice the tolerance): the sender's retry
    claimed the id since, and the failed view's release must not delete that claim."""
    now = [0.0]
    store = MemoryReplayStore(clock=lambda: now[0])
    guard = signed_guard(pki, "payments", replay=store)
    accepted = guard.check(signed_delivery(pki, "msg_1"), "payments")
    assert isinstance(accepted, Webhook)
    assert accepted.claim_token is not None
    key = replay_key("payments", "msg_1")
    now[0] = 601
    assert store.claim(key, 600, "the retry's")
    guard.release(accepted)
    assert not store.claim(key, 600)  # still the retry's
    store.release(key, "the retry's")
    second = guard.check(signed_delivery(pki, "msg_1"), "payments")
    assert isinstance(second, Webhook)
    guard.release(second)  # its own: given back
    assert isinstance(guard.check(signed_delivery(pki, "msg_1"), "payments"), Webhook)


def test_a_release_that_raises_unexpectedly_is_logged_and_changes_no_answer(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MemoryReplayStore):
        def release(self, key: str, token: str | None = None, ttl_s: int = 0) -> None:
            raise RuntimeError("a bug in a store")

    guard = signed_guard(pki, "payments", replay=Broken())
    accepted = guard.check(signed_delivery(pki, "msg_1"), "payments")
    assert isinstance(accepted, Webhook)
    guard.release(accepted)  # the view's own failure stays its answer
    assert "unexpected error releasing webhook-id on endpoint payments" in caplog.text


def test_a_claim_made_with_the_rate_count_is_released_by_its_token(
    pki: TestPki, redis_url: str, unique: str
) -> None:
    limiter = RateLimiter(redis_url)
    assert limiter.redis is not None
    joint = signed_guard(
        pki, unique, limiter=limiter, replay=RedisReplayStore.sharing(limiter.redis)
    )
    accepted = joint.check(signed_delivery(pki, "msg_1"), unique)
    assert isinstance(accepted, Webhook)
    client = redis.Redis.from_url(redis_url)
    key = replay_key(unique, "msg_1")
    assert client.get(key) == cast(str, accepted.claim_token).encode()  # the one trip's claim
    client.set(key, "the retry's", ex=600)
    joint.release(accepted)
    assert client.get(key) == b"the retry's"
    client.delete(key)
    second = joint.check(signed_delivery(pki, "msg_1"), unique)
    assert isinstance(second, Webhook)
    joint.release(second)
    assert not client.exists(key)


def test_an_accepted_webhook_is_the_frozen_dataclass_its_init_makes(pki: TestPki) -> None:
    identity = guard(pki).verifier.verify(
        build_source("nginx").take(from_proxy(pki.allowed.certificate))  # type: ignore[arg-type]
    )
    assert not isinstance(identity, Rejection)
    document, body = {"a": 1}, b'{"a": 1}'
    values = ("payments", identity.identity, ALLOWED, False, document, body, "msg_1", "c0ffee")
    made = accepted_webhook(*values)
    assert made == Webhook(*values)
    assert dataclasses.astuple(made) == dataclasses.astuple(Webhook(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.delivery_id = "msg_2"  # type: ignore[misc]
    # Every field of the dataclass, and nothing else, is in the instance it fills.
    assert made.__dict__.keys() == {f.name for f in dataclasses.fields(Webhook)}
