from __future__ import annotations

import socket
import threading
from typing import Any, cast

import pytest
import redis

from hookshield.core.errors import Code, ConfigurationError
from hookshield.core.ratelimit import RateLimiter, RateLimitFailure, parse_rates
from hookshield.core.redis_topology import RETRY_AFTER, UnconfirmedClaims
from hookshield.core.replay import MemoryReplayStore, RedisReplayStore, StoreUnavailable, replay_key


def test_keys_are_short_and_tagged_by_endpoint() -> None:
    key = replay_key("payments", "msg_" + "x" * 200)
    assert key.startswith("hookshield:replay:{payments}:")
    assert len(key) < 70
    assert replay_key("payments", "a") != replay_key("refunds", "a")


def test_memory_store_claims_once_until_expiry() -> None:
    now = [0.0]
    store = MemoryReplayStore(clock=lambda: now[0])
    assert store.claim("k", 600)
    assert not store.claim("k", 600)
    now[0] = 599
    assert not store.claim("k", 600)
    now[0] = 601
    assert store.claim("k", 600)


def test_memory_store_release_and_bound() -> None:
    store = MemoryReplayStore(max_entries=2, clock=lambda: 0.0)
    assert store.claim("a", 10)
    store.release("a")
    assert store.claim("a", 10)
    assert store.claim("b", 10)
    with pytest.raises(StoreUnavailable, match="full"):
        store.claim("c", 10)


def test_a_full_memory_store_drops_expired_ids_behind_a_live_one() -> None:
    """Ids of an endpoint with a short TTL, claimed after one with a long TTL, expire first:
    a full store drops them rather than refusing while they hold its places."""
    now = [0.0]
    store = MemoryReplayStore(max_entries=3, clock=lambda: now[0])
    assert store.claim("long", 600)
    assert store.claim("short-1", 60)
    assert store.claim("short-2", 60)
    now[0] = 61  # both short ones have expired; the long one, first in line, has not
    assert store.claim("c", 60)
    assert store.claim("d", 60)
    with pytest.raises(StoreUnavailable, match="full"):
        store.claim("e", 60)  # three live ids: full indeed
    assert not store.claim("long", 600)
    now[0] = 121.5  # c and d have expired, behind the long one: a second since the last pass
    assert store.claim("e", 60)


def test_a_full_memory_store_passes_over_its_ids_at_most_once_a_second() -> None:
    """The pass that drops expired ids behind a live one visits the whole store: while the store
    stays full it runs once a second at most, and a claim between passes is refused."""
    now = [0.0]
    store = MemoryReplayStore(max_entries=3, clock=lambda: now[0])
    assert store.claim("long", 100)
    now[0] = 1.5
    assert store.claim("short-1", 1)  # expires at 2.5
    now[0] = 1.6
    assert store.claim("short-2", 1)  # expires at 2.6
    now[0] = 2.0
    with pytest.raises(StoreUnavailable, match="full"):
        store.claim("x", 1)  # a pass: nothing has expired yet
    now[0] = 2.7  # both short ids have expired, a second has not passed since the last pass
    with pytest.raises(StoreUnavailable, match="full"):
        store.claim("y", 1)
    now[0] = 3.0
    assert store.claim("y", 1)  # the next pass drops them


def test_redis_store(redis_url: str, unique: str) -> None:
    store = RedisReplayStore(redis_url)
    assert store.networked
    assert store.claim(unique, 600)
    assert not store.claim(unique, 600)
    ttl = int(cast(Any, redis.Redis.from_url(redis_url).ttl(unique)))
    assert 0 < ttl <= 600
    store.release(unique)
    assert store.claim(unique, 600)


def test_a_release_deletes_its_own_claim_only_in_memory() -> None:
    """A view that ran past its claim's expiry: another claim of the id was made since."""
    now = [0.0]
    store = MemoryReplayStore(clock=lambda: now[0])
    assert store.claim("k", 10, "first")
    now[0] = 11
    assert store.claim("k", 600, "since")  # the sender's retry, after the first expired
    store.release("k", "first", 10)
    assert not store.claim("k", 600)  # still held by the claim made since
    store.release("k", "since", 600)
    assert store.claim("k", 600)


def test_a_release_deletes_its_own_claim_only_on_redis(redis_url: str, unique: str) -> None:
    store = RedisReplayStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    assert store.claim(unique, 600, "first")
    assert client.get(unique) == b"first"
    client.set(unique, "since", ex=600)  # the first expired and the id was claimed again
    store.release(unique, "first", 600)
    assert client.get(unique) == b"since"
    store.release(unique, "since", 600)
    assert not client.exists(unique)


def test_redis_store_unreachable() -> None:
    store = RedisReplayStore("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable, match="redis"):
        store.claim("k", 60)
    with pytest.raises(StoreUnavailable):
        store.release("k")


def test_sentinel_and_unix_uris_fail_closed_when_unreachable(tmp_path: Any) -> None:
    for uri in ("redis+sentinel://127.0.0.1:1/mymaster", f"unix://{tmp_path}/no.sock"):
        store = RedisReplayStore(uri)
        with pytest.raises(StoreUnavailable, match="redis"):
            store.claim("k", 60)


def test_a_cluster_that_cannot_be_reached_is_a_configuration_error() -> None:
    # The cluster client maps the slots when it is created: nothing to map, nothing to use.
    with pytest.raises(ConfigurationError, match=r"REPLAY_STORAGE = .* cannot be reached"):
        RedisReplayStore("redis+cluster://127.0.0.1:1")


def test_sharing_the_rate_limiters_client(redis_url: str, unique: str) -> None:
    limiter = RateLimiter(redis_url)
    assert limiter.redis is not None
    store = RedisReplayStore.sharing(limiter.redis)
    assert store.storage is limiter.redis
    assert store.claim(unique, 60)
    assert not RedisReplayStore(redis_url).claim(unique, 60)


class Closing:
    """Listeners on loopback that accept every connection and close it at once, counting."""

    def __init__(self, count: int = 1) -> None:
        self.accepted: list[int] = []
        self._listeners = []
        for _ in range(count):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            self._listeners.append(listener)
            threading.Thread(target=self._serve, args=(listener,), daemon=True).start()
        self.ports = [listener.getsockname()[1] for listener in self._listeners]

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            self.accepted.append(listener.getsockname()[1])
            connection.close()

    def __enter__(self) -> Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        for listener in self._listeners:
            listener.close()


def test_each_sentinel_is_asked_once_per_claim() -> None:
    """Sentinels that close every connection: one attempt each, not redis-py's ten with
    backoff (which held a request for seconds)."""
    with Closing(2) as sentinels:
        hosts = ",".join(f"127.0.0.1:{port}" for port in sentinels.ports)
        store = RedisReplayStore(f"redis+sentinel://{hosts}/mymaster")
        with pytest.raises(StoreUnavailable, match="MasterNotFoundError"):
            store.claim("k", 60)
    assert sorted(sentinels.accepted) == sorted(sentinels.ports)


def test_a_store_that_failed_is_refused_without_asking_for_a_few_seconds() -> None:
    now = [0.0]
    with Closing() as server:
        store = RedisReplayStore(f"redis://127.0.0.1:{server.ports[0]}/0", monotonic=lambda: now[0])
        for _ in range(3):
            with pytest.raises(StoreUnavailable):
                store.claim("k", 60)
        assert len(server.accepted) == 1  # refused at once after the first failure
        # A release is tried even so: a claim held after its delivery failed would refuse the
        # sender's retry as a replay until it expires.
        with pytest.raises(StoreUnavailable):
            store.release("k")
        assert len(server.accepted) == 2
        now[0] = RETRY_AFTER + 0.1
        with pytest.raises(StoreUnavailable):
            store.claim("k", 60)
        assert len(server.accepted) == 3  # asked again


def test_the_limiter_and_a_store_on_its_client_learn_of_a_failure_from_each_other() -> None:
    now = [0.0]
    with Closing() as server:
        limiter = RateLimiter(
            f"redis://127.0.0.1:{server.ports[0]}/0",
            failure=RateLimitFailure.DENY,
            monotonic=lambda: now[0],
        )
        assert limiter.redis is not None
        store = RedisReplayStore.sharing(limiter.redis, monotonic=lambda: now[0])
        refused = limiter.hit("payments", "someone", parse_rates("5/minute", "RATE"))
        assert refused is not None
        assert refused.code is Code.RATE_LIMIT_UNAVAILABLE
        with pytest.raises(StoreUnavailable, match="moments ago"):
            store.claim(replay_key("payments", "msg_1"), 60)
        assert len(server.accepted) == 1


def test_a_worker_keeps_at_most_so_many_unconfirmed_claims(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bound on what an outage can make a worker remember; beyond it, a log line."""
    unconfirmed = UnconfirmedClaims()
    for i in range(UnconfirmedClaims.KEPT + 1):
        unconfirmed.add(i % 3, f"k{i}", "token", 600.0)
    assert sum(map(len, unconfirmed.pending.values())) == UnconfirmedClaims.KEPT
    assert f"unconfirmed replay claims: {UnconfirmedClaims.KEPT} kept" in caplog.text
