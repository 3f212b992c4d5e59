from __future__ import annotations

import socket
import threading
from typing import Any, cast

import pytest
import redis

from hookshield.core.errors import ConfigurationError
from hookshield.core.ratelimit import RateLimiter
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


def test_redis_store(redis_url: str, unique: str) -> None:
    store = RedisReplayStore(redis_url)
    assert store.networked
    assert store.claim(unique, 600)
    assert not store.claim(unique, 600)
    ttl = int(cast(Any, redis.Redis.from_url(redis_url).ttl(unique)))
    assert 0 < ttl <= 600
    store.release(unique)
    assert store.claim(unique, 600)


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


def test_each_sentinel_is_asked_once_per_claim(tmp_path: Any) -> None:
    """Sentinels that close every connection: one attempt each, not redis-py's ten with
    backoff (which held a request for seconds)."""
    listeners, accepted = [], []

    def serve(listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(listener.getsockname()[1])
            connection.close()

    for _ in range(2):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listeners.append(listener)
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
    ports = [listener.getsockname()[1] for listener in listeners]
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    try:
        store = RedisReplayStore(f"redis+sentinel://{hosts}/mymaster")
        with pytest.raises(StoreUnavailable, match="MasterNotFoundError"):
            store.claim("k", 60)
    finally:
        for listener in listeners:
            listener.close()
    assert sorted(accepted) == sorted(ports)
