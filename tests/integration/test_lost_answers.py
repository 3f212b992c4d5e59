"""A replay claim whose answer never came: Redis may have stored it, and a claim nobody was told
about would refuse the sender's retry as a replay (409) until it expires, so the delivery would
be accepted zero times. Each is given back as soon as Redis answers again. On a redis-server of
the test's own, behind a relay that loses answers after the command ran."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client

from hookshield.core import redis_topology
from hookshield.core.errors import Rejection
from hookshield.core.pipeline import Endpoint, Guard, Webhook
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust, parse_networks
from hookshield.core.ratelimit import RateLimiter, parse_rates
from hookshield.core.redis_topology import RETRY_AFTER
from hookshield.core.replay import RedisReplayStore, StoreUnavailable, claim_token, replay_key
from hookshield.core.signatures import SignatureVerifier, sign_v1
from hookshield.core.sources import Inbound, build_source
from hookshield.core.verify import Verifier
from hookshield.demo.processes import free_port
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.lossy_relay import LossyRelay, lossy_relay
from tests.integration.redis_topologies import (
    BODY,
    SECRET,
    Clock,
    Node,
    redis_node,
    signed_headers,
)

pytestmark = pytest.mark.integration

RATES = parse_rates("1000/minute", "RATE")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with redis_node(tmp_path_factory.mktemp("lost-answers") / "redis") as node:
        yield node


@pytest.fixture
def relay(node: Node) -> Iterator[LossyRelay]:
    with lossy_relay(node.port) as relay:
        yield relay


def test_a_joint_claim_whose_answer_was_lost_is_given_back_when_redis_answers_again(
    node: Node, relay: LossyRelay
) -> None:
    clock = Clock()
    limiter = RateLimiter(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    assert limiter.redis is not None
    store = RedisReplayStore.sharing(limiter.redis, monotonic=clock)
    endpoint, key = "payments", replay_key("payments", uuid.uuid4().hex)
    warm_up = (replay_key(endpoint, uuid.uuid4().hex), 600, claim_token())
    assert limiter.hit_and_claim(endpoint, ALLOWED, RATES, warm_up) == (None, True)  # loaded
    relay.losing.set()
    assert limiter.hit_and_claim(endpoint, ALLOWED, RATES, (key, 600, claim_token())) == (
        None,
        None,
    )
    relay.losing.clear()
    assert relay.lost == 1
    assert node.client().exists(key)  # it ran: the id is held
    with pytest.raises(StoreUnavailable):
        store.claim(key, 600)  # left alone for RETRY_AFTER, as every fault is
    clock.now += RETRY_AFTER
    assert limiter.hit(endpoint, ALLOWED, RATES) is None  # Redis answers again
    assert not node.client().exists(key)
    assert store.claim(key, 600) is True  # the sender's retry: a first delivery


def test_a_claim_whose_answer_was_lost_is_given_back_by_the_store_too(
    node: Node, relay: LossyRelay
) -> None:
    clock = Clock()
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    key, other = (replay_key("payments", uuid.uuid4().hex) for _ in range(2))
    assert store.claim(other, 600) is True  # connected
    relay.losing.set()
    with pytest.raises(StoreUnavailable):
        store.claim(key, 600)
    relay.losing.clear()
    assert node.client().exists(key)
    clock.now += RETRY_AFTER
    assert store.claim(other, 600) is False  # any command on that domain settles it first
    assert not node.client().exists(key)
    assert store.claim(key, 600) is True


def test_only_the_lost_claim_is_given_back_not_one_made_since(
    node: Node, relay: LossyRelay
) -> None:
    """The give-back deletes the key only while it holds the lost claim's own token: if it
    expired and another delivery claimed it meanwhile, that claim stays."""
    clock = Clock()
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    key = replay_key("payments", uuid.uuid4().hex)
    assert store.claim(replay_key("payments", "warm-up-" + uuid.uuid4().hex), 600)
    relay.losing.set()
    with pytest.raises(StoreUnavailable):
        store.claim(key, 600)
    relay.losing.clear()
    node.client().set(key, b"a claim made since", ex=600)
    clock.now += RETRY_AFTER
    assert store.claim(key, 600) is False
    assert node.client().get(key) == b"a claim made since"


def lose_a_claim(store: RedisReplayStore, relay: LossyRelay, key: str) -> None:
    """``store`` claims ``key``; Redis stores it, its answer is lost."""
    relay.losing.set()
    with pytest.raises(StoreUnavailable):
        store.claim(key, 600)
    relay.losing.clear()


def test_a_give_back_that_fails_keeps_the_lost_claim_and_sends_no_new_one(
    node: Node, relay: LossyRelay
) -> None:
    """Redis still unreachable when the give-back is due: the request claims nothing (it never
    asked), and the claim whose answer was lost is given back on a later request."""
    clock = Clock()
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    key, other = (replay_key("payments", uuid.uuid4().hex) for _ in range(2))
    assert store.claim(other, 600) is True  # connected
    lose_a_claim(store, relay, key)
    clock.now += RETRY_AFTER
    relay.cutting.set()
    with pytest.raises(StoreUnavailable):
        store.claim(key, 600)  # the sender's retry; the give-back before it never arrives
    relay.cutting.clear()
    assert node.client().exists(key)
    clock.now += RETRY_AFTER
    assert store.claim(key, 600) is True  # given back first, then claimed by this retry


def test_a_give_back_redis_refuses_is_logged_and_dropped_not_retried_forever(
    node: Node, relay: LossyRelay, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    key, other = (replay_key("payments", uuid.uuid4().hex) for _ in range(2))
    assert store.claim(other, 600) is True
    lose_a_claim(store, relay, key)
    node.client().delete(key)
    node.client().lpush(key, "not a claim")  # the give-back's GET answers WRONGTYPE
    clock.now += RETRY_AFTER
    assert store.claim(other, 600) is False  # the claim itself still answered
    assert "could not give back 1 unconfirmed replay claim(s) (ResponseError)" in caplog.text
    caplog.clear()
    assert store.claim(other, 600) is False
    assert "could not give back" not in caplog.text  # dropped, not tried on every request


def test_a_give_back_an_acl_refuses_is_logged_and_dropped(
    node: Node, relay: LossyRelay, caplog: pytest.LogCaptureFixture
) -> None:
    """A user whose ACL lost EVALSHA and EVAL after the claim: Redis's own refusal (NOPERM)."""
    admin = node.client()
    user = f"hook{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(user, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all"])
    try:
        clock = Clock()
        uri = f"redis://{user}:pw@127.0.0.1:{relay.port}/0"
        store = RedisReplayStore(uri, monotonic=clock)
        key, other = (replay_key("payments", uuid.uuid4().hex) for _ in range(2))
        assert store.claim(other, 600) is True
        lose_a_claim(store, relay, key)
        admin.acl_setuser(user, enabled=True, commands=["-evalsha", "-eval"])
        clock.now += RETRY_AFTER
        with pytest.raises(StoreUnavailable):
            store.claim(other, 600)  # the claim is a script too: refused likewise
        assert "could not give back 1 unconfirmed replay claim(s) (NoPermissionError)" in (
            caplog.text
        )
        assert admin.exists(key)  # held until it expires, as the README says
        kept = {k for claims in store._unconfirmed.pending.values() for k, _ in claims}
        assert key not in kept  # dropped, not tried on every request
        assert other in kept  # the refused claim itself: a cluster client's retry hides its first
    finally:
        admin.acl_deluser(user)


def test_a_give_back_a_demoted_master_refuses_is_kept_for_when_it_is_a_master_again(
    node: Node, relay: LossyRelay
) -> None:
    """READONLY (as CLUSTERDOWN or TRYAGAIN) is a failover's answer for a while, not a refusal
    to keep: the claim is given back once the node accepts writes again."""
    clock = Clock()
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    key, other = (replay_key("payments", uuid.uuid4().hex) for _ in range(2))
    assert store.claim(other, 600) is True
    lose_a_claim(store, relay, key)
    admin = node.client()
    admin.replicaof("127.0.0.1", str(free_port()))  # a master that never answers: no resync
    try:
        clock.now += RETRY_AFTER
        with pytest.raises(StoreUnavailable):
            store.claim(other, 600)  # the give-back before it: READONLY
    finally:
        admin.replicaof("NO", "ONE")
    assert admin.exists(key)
    clock.now += RETRY_AFTER
    assert store.claim(f"{other}:2", 600) is True  # given back first
    assert not admin.exists(key)
    assert store.claim(key, 600) is True  # the sender's retry


def test_a_lost_claim_is_forgotten_once_its_ttl_has_passed(node: Node, relay: LossyRelay) -> None:
    clock = Clock()
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    key, other = (replay_key("payments", uuid.uuid4().hex) for _ in range(2))
    assert store.claim(other, 600) is True
    lose_a_claim(store, relay, key)
    node.client().set(key, b"a claim made since", ex=600)  # the lost one expired meanwhile
    clock.now += 601
    assert store.claim(other, 600) is False
    assert node.client().get(key) == b"a claim made since"


def test_a_claim_retried_by_the_client_finds_its_own_token(node: Node, relay: LossyRelay) -> None:
    """A client that retries a command whose answer it lost (redis-py's cluster client does,
    once) finds the claim it made: a first delivery, not a replay."""
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0")
    key = replay_key("payments", uuid.uuid4().hex)
    assert store.claim(key, 600, "one attempt's token") is True
    assert store.claim(key, 600, "one attempt's token") is True  # the same command again
    assert store.claim(key, 600, "another delivery's") is False


@pytest.fixture
def lossy_guard(
    settings: Any, pki: TestPki, relay: LossyRelay, monkeypatch: pytest.MonkeyPatch
) -> LossyRelay:
    uri = f"redis://127.0.0.1:{relay.port}/0"
    settings.HOOKSHIELD = guard_config(
        pki,
        RATE_LIMIT_STORAGE=uri,
        REPLAY_STORAGE=uri,
        RATE_LIMIT_FAILURE="deny",
        ENDPOINTS={
            "payments": {"ALLOW": [ALLOWED], "RATE": "1000/minute", "SIGNING_SECRETS": [SECRET]}
        },
    )
    # A failed fault domain is asked again at once (not RETRY_AFTER later): the sender's
    # retry below stands for one that comes after that pause.
    monkeypatch.setattr(redis_topology, "RETRY_AFTER", 0.0)
    return relay


def deliver(pki: TestPki, msg_id: str) -> int:
    response = Client().post(
        "/hooks/payments/",
        data=BODY,
        content_type="application/json",
        headers=signed_headers(pki, msg_id),
    )
    return response.status_code


def test_a_delivery_whose_claim_answer_was_lost_is_accepted_on_the_senders_retry(
    lossy_guard: LossyRelay, pki: TestPki, tmp_path: Path
) -> None:
    assert deliver(pki, f"msg_{uuid.uuid4().hex}") == 200  # connected, script loaded
    msg_id = f"msg_{uuid.uuid4().hex}"
    lossy_guard.losing.set()
    assert deliver(pki, msg_id) == 503  # the storage failed: RATE_LIMIT_FAILURE deny
    lossy_guard.losing.clear()
    assert deliver(pki, msg_id) == 200  # not 409: the lost claim was given back first
    assert deliver(pki, msg_id) == 409  # and this one holds


def test_a_release_whose_command_failed_is_given_back_when_redis_answers_again(
    node: Node, relay: LossyRelay
) -> None:
    """The view failed and its release did not reach Redis: the claim would refuse the sender's
    retry as a replay until it expires; it is given back before the next claim there."""
    clock = Clock()
    store = RedisReplayStore(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    key, other = (replay_key("payments", uuid.uuid4().hex) for _ in range(2))
    assert store.claim(key, 600, "mine") is True
    relay.cutting.set()
    with pytest.raises(StoreUnavailable):
        store.release(key, "mine", 600)
    relay.cutting.clear()
    assert node.client().get(key) == b"mine"  # still held
    clock.now += RETRY_AFTER
    assert store.claim(other, 600) is True  # Redis answers again: given back first
    assert not node.client().exists(key)
    assert store.claim(key, 600) is True  # the sender's retry


def joint_guard(pki: TestPki, relay: LossyRelay, clock: Clock) -> Guard:
    """The core guard on the relay: rate count and claim in one command, as in production."""
    limiter = RateLimiter(f"redis://127.0.0.1:{relay.port}/0", monotonic=clock)
    assert limiter.redis is not None
    endpoint = Endpoint(
        "payments", Allowlist.parse([ALLOWED]), rates=RATES, signatures=SignatureVerifier([SECRET])
    )
    return Guard(
        source=build_source("nginx"),
        trust=ProxyTrust(parse_networks(["127.0.0.1/32"])),
        verifier=Verifier([pki.root.certificate]),
        endpoints={"payments": endpoint},
        limiter=limiter,
        replay=RedisReplayStore.sharing(limiter.redis, monotonic=clock),
    )


def signed(pki: TestPki, msg_id: str, secret: str = SECRET, read: Any = None) -> Inbound:
    stamp = int(time.time())
    meta = {
        "HTTP_X_SSL_CLIENT_CERT": encodings.nginx_escaped(pki.allowed.certificate),
        "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(stamp),
        "HTTP_WEBHOOK_SIGNATURE": sign_v1(secret, msg_id, stamp, b"{}"),
    }
    return Inbound(peer="127.0.0.1", meta=meta, read=read or io.BytesIO(b"{}").read)


def test_the_guard_s_release_after_a_failed_view_is_given_back_when_redis_answers_again(
    node: Node, relay: LossyRelay, pki: TestPki
) -> None:
    clock = Clock()
    guard = joint_guard(pki, relay, clock)
    msg_id = f"msg_{uuid.uuid4().hex}"
    accepted = guard.check(signed(pki, msg_id), "payments")
    assert isinstance(accepted, Webhook)
    relay.cutting.set()
    guard.release(accepted)  # the view failed; its release does not reach Redis (logged)
    relay.cutting.clear()
    key = replay_key("payments", msg_id)
    assert node.client().exists(key)
    clock.now += RETRY_AFTER
    assert isinstance(guard.check(signed(pki, f"msg_{uuid.uuid4().hex}"), "payments"), Webhook)
    assert not node.client().exists(key)  # given back before that claim
    assert isinstance(guard.check(signed(pki, msg_id), "payments"), Webhook)  # the retry


def test_a_forged_delivery_s_give_back_that_failed_is_given_back_later(
    node: Node, relay: LossyRelay, pki: TestPki
) -> None:
    """The id is claimed with the rate count, before the signature is checked; a forged
    delivery gives it back, and if that command fails, the give-back is kept for later."""
    clock = Clock()
    guard = joint_guard(pki, relay, clock)
    assert isinstance(guard.check(signed(pki, f"msg_{uuid.uuid4().hex}"), "payments"), Webhook)
    msg_id = f"msg_{uuid.uuid4().hex}"

    stream = io.BytesIO(b"{}")

    def read_then_cut(size: int) -> bytes:  # read after the claim's answer, before the check
        relay.cutting.set()
        return stream.read(size)

    forged = signed(pki, msg_id, secret="whsec_" + "A" * 32, read=read_then_cut)
    # Undeclared: not read while Redis counts (READ_AHEAD).
    forged.meta = {k: v for k, v in forged.meta.items() if k != "CONTENT_LENGTH"}
    refused = guard.check(forged, "payments")
    relay.cutting.clear()
    assert isinstance(refused, Rejection)
    assert refused.code == "signature_invalid"
    key = replay_key("payments", msg_id)
    assert node.client().exists(key)  # the give-back did not reach Redis
    clock.now += RETRY_AFTER
    assert isinstance(guard.check(signed(pki, f"msg_{uuid.uuid4().hex}"), "payments"), Webhook)
    assert not node.client().exists(key)
    assert isinstance(guard.check(signed(pki, msg_id), "payments"), Webhook)  # the real one


def test_an_answer_lost_while_the_body_is_read_ahead_loses_no_delivery(
    node: Node, relay: LossyRelay, pki: TestPki
) -> None:
    """A short body is read while Redis counts. Here the count's answer, held back until then,
    is lost (the claim was stored): the delivery is refused for now (503), and its retry,
    once the claim is given back, accepted."""
    clock = Clock()
    guard = joint_guard(pki, relay, clock)
    assert isinstance(guard.check(signed(pki, f"msg_{uuid.uuid4().hex}"), "payments"), Webhook)
    msg_id = f"msg_{uuid.uuid4().hex}"
    stream = io.BytesIO(b"{}")

    def read_and_lose(size: int) -> bytes:  # while the answer is held back by the relay
        relay.losing.set()
        relay.released.set()
        return stream.read(size)

    relay.released.clear()
    refused = guard.check(signed(pki, msg_id, read=read_and_lose), "payments")
    relay.released.set()
    relay.losing.clear()
    assert relay.lost == 1
    assert node.client().exists(replay_key("payments", msg_id))  # stored, its answer lost
    assert isinstance(refused, Rejection)
    assert (refused.status, refused.code) == (503, "replay_store_unavailable")
    clock.now += RETRY_AFTER
    assert isinstance(guard.check(signed(pki, msg_id), "payments"), Webhook)  # the retry


@pytest.mark.parametrize("pool_kind", ["node", "sentinel"])
def test_an_answer_that_comes_after_the_timeout_is_never_read_as_the_next_one(
    node: Node, relay: LossyRelay, pool_kind: str
) -> None:
    """The guard sends its scripts on a connection of the client's pool. One whose answer came
    too late is closed, not put back holding that answer: the next command, another delivery's
    claim or count, must read its own. redis-py's Sentinel-managed connections do not close
    themselves on a timeout, and the pool's check for a connection holding data is off under
    RESP3 (redis-py 8's default), so this rests on the guard closing it."""
    import redis
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.sentinel import SentinelConnectionPool

    options: dict[str, Any] = {"socket_timeout": redis_topology.STORAGE_TIMEOUT}
    if pool_kind == "sentinel":
        # The master as a Sentinel group names it: here, through the relay.
        sentinels = SimpleNamespace(discover_master=lambda name: ("127.0.0.1", relay.port))
        pool: Any = SentinelConnectionPool("hookshield-test", sentinels, **options)
        client = redis.Redis(connection_pool=pool)
    else:
        client = redis.Redis(port=relay.port, **options)
    echo = redis_topology.KeyedScript(client, "return ARGV[1]", redis.exceptions)
    assert echo([], ["first"]) == b"first"  # connected, the script sent
    relay.delay = 2 * redis_topology.STORAGE_TIMEOUT
    with pytest.raises(RedisTimeoutError):
        echo([], ["late"])
    relay.delay = 0.0
    time.sleep(3 * redis_topology.STORAGE_TIMEOUT)  # the late answer has come by now
    assert echo([], ["second"]) == b"second"
    assert echo([], ["third"]) == b"third"
    client.close()
