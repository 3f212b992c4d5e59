"""The one-round-trip script against limits' own moving window, on the real Redis."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
import redis

from hookshield.core.redis_hit import SCRIPTS_KEPT, RedisHit, WindowKey
from hookshield.core.redis_topology import open_storage

START = 1_764_690_000.25  # a realistic epoch with a fraction
# Instants (s after START) around the edges of a 3-per-10 s and a 2-per-1 s window.
INSTANTS = [0, 0.1, 0.5, 1.2, 1.3, 1.31, 2.0, 9.99, 10.0, 10.1, 10.5, 11.3, 11.4, 20.0, 20.0]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [START]
    monkeypatch.setattr(time, "time", lambda: now[0])  # what limits and the script both read
    return now


def entries(client: redis.Redis, key: str) -> list[float]:
    """A window's timestamps as numbers: the script pushes the client's text of the timestamp,
    limits' script Lua's (``1764690000.35`` against ``1764690000.3499999``, the same double)."""
    return [float(entry) for entry in cast(list[bytes], client.lrange(f"hookshield:{key}", 0, -1))]


def test_one_window_accepts_refuses_and_resets_as_limits_does(
    redis_url: str, unique: str, clock: list[float]
) -> None:
    storage = open_storage(redis_url, "RATE_LIMIT_STORAGE")
    script = RedisHit(storage)
    client = redis.Redis.from_url(redis_url)
    ours, theirs = f"{unique}/ours", f"{unique}/limits"
    plan = script.plan([WindowKey(ours, 3, 10)])
    for at in INSTANTS:
        clock[0] = START + at
        hit = script(plan)
        accepted = storage.acquire_entry(theirs, 3, 10)
        assert (hit.refused is None) == accepted, at
        if not accepted:
            start, count = storage.get_moving_window(theirs, 3, 10)
            assert (hit.reset_at, count) == (start + 10, 3), at
        assert entries(client, ours) == entries(client, theirs)
        assert client.ttl(f"hookshield:{ours}") == client.ttl(f"hookshield:{theirs}")


def test_several_windows_stop_at_the_first_refusal_as_one_call_each_does(
    redis_url: str, unique: str, clock: list[float]
) -> None:
    storage = open_storage(redis_url, "RATE_LIMIT_STORAGE")
    script = RedisHit(storage)
    client = redis.Redis.from_url(redis_url)
    limits = [(2, 1), (3, 10)]
    plan = script.plan([WindowKey(f"{unique}/ours/{n}", n, e) for n, e in limits])
    for at in INSTANTS:
        clock[0] = START + at
        hit = script(plan)
        refused = next(
            (
                i
                for i, (n, e) in enumerate(limits)
                if not storage.acquire_entry(f"{unique}/l/{n}", n, e)
            ),
            None,
        )
        assert hit.refused == refused, at
    for n, _ in limits:
        assert entries(client, f"{unique}/ours/{n}") == entries(client, f"{unique}/l/{n}")


def test_the_claim_is_made_only_when_every_limit_admits(redis_url: str, unique: str) -> None:
    script = RedisHit(open_storage(redis_url, "RATE_LIMIT_STORAGE"))
    client = redis.Redis.from_url(redis_url)
    one = script.plan([WindowKey(f"{unique}/w", 1, 60)])
    assert script(one, (f"{unique}/a", 120, "mine")).claimed is True
    assert client.get(f"{unique}/a") == b"mine"  # the claim's own token
    assert 0 < cast(Any, client.ttl(f"{unique}/a")) <= 120
    refused = script(one, (f"{unique}/b", 120, "token"))
    assert (refused.refused, refused.claimed) == (0, None)
    assert not client.exists(f"{unique}/b")  # a refused request claims nothing
    wide = script.plan([WindowKey(f"{unique}/v", 100, 60)])
    assert script(wide, (f"{unique}/c", 120, "token")).claimed is True
    assert script(wide, (f"{unique}/c", 120, "another")).claimed is False  # a replay
    # The same token: the client's retry of the command that made the claim (its answer lost).
    assert script(wide, (f"{unique}/c", 120, "token")).claimed is True
    assert script(wide).claimed is None
    assert script(wide, (f"{unique}/d", 30, "token")).claimed is True  # the shape's own TTL
    assert 0 < cast(Any, client.ttl(f"{unique}/d")) <= 30 < cast(Any, client.ttl(f"{unique}/c"))


def test_a_window_of_no_requests_refuses_and_counts_nothing_after_it(
    redis_url: str, unique: str, clock: list[float]
) -> None:
    storage = open_storage(redis_url, "RATE_LIMIT_STORAGE")
    script = RedisHit(storage)
    client = redis.Redis.from_url(redis_url)
    hit = script(
        script.plan([WindowKey(f"{unique}/open", 5, 10), WindowKey(f"{unique}/shut", 0, 10)])
    )
    assert (hit.refused, hit.reset_at) == (1, START + 10)
    assert not storage.acquire_entry(f"{unique}/limits", 0, 10)  # as limits answers
    assert entries(client, f"{unique}/open") == [START]  # the limit before it keeps the hit
    assert not client.exists(f"hookshield:{unique}/shut")


def test_each_shape_has_its_script_and_their_number_is_bounded(redis_url: str, unique: str) -> None:
    script = RedisHit(open_storage(redis_url, "RATE_LIMIT_STORAGE"))
    for limit in range(1, SCRIPTS_KEPT + 3):
        assert script(script.plan([WindowKey(f"{unique}/{limit}", limit, 60)])).refused is None
    assert 0 < len(script._scripts) <= SCRIPTS_KEPT
    # Dropped from the cache, made again for a new plan of the shape.
    refused = script(script.plan([WindowKey(f"{unique}/1", 1, 60)]))
    assert refused.refused == 0


def test_plans_of_one_shape_share_its_script_and_keep_it(
    redis_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = RedisHit(open_storage(redis_url, "RATE_LIMIT_STORAGE"))
    first = script.plan([WindowKey(f"{unique}/a", 5, 60)])
    second = script.plan([WindowKey(f"{unique}/b", 5, 60)])
    assert first.keys == (f"hookshield:{unique}/a",)  # the storage's prefix, added once
    script(first)
    script(second, (f"{unique}/claim", 30, "token"))
    script(second)
    assert first.scripts[0] is second.scripts[0]  # one script per shape and TTL
    assert second.scripts[30] is not second.scripts[0]
    assert len(script._scripts) == 2

    def made_again(*args: object) -> Any:
        raise AssertionError("a planned request makes its script again")

    script._scripts.clear()
    monkeypatch.setattr(script, "_script", made_again)
    assert script(first).refused is None  # the plan's own script, kept
    assert script(second, (f"{unique}/claim-2", 30, "token")).claimed is True


@pytest.mark.parametrize("loaded", [True, False], ids=["EVALSHA", "EVAL after NOSCRIPT"])
def test_a_started_hit_is_counted_and_answered_through_its_reader(
    redis_url: str, unique: str, loaded: bool
) -> None:
    """``start`` sends the script and returns: Redis counts (and claims) while the caller
    works, and the reader hands back the answer and the connection."""
    storage = open_storage(redis_url, "RATE_LIMIT_STORAGE")
    script = RedisHit(storage)
    plan = script.plan([WindowKey(f"{unique}/w", 5, 60)])
    client = redis.Redis.from_url(redis_url)
    if loaded:
        assert script(plan).refused is None  # the script is cached in Redis now
    else:
        client.script_flush()
    claim = (f"hookshield:{unique}/claim", 30, "token")
    read = script.start(plan, claim)
    if loaded:  # stored before the answer is read (after NOSCRIPT, by the reader's EVAL)
        deadline = time.monotonic() + 5
        while not client.exists(claim[0]) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert client.exists(claim[0])
    hit = RedisHit.answer(plan, read())
    assert (hit.refused, hit.claimed) == (None, True)
    assert client.get(claim[0]) == b"token"
    assert len(entries(client, f"{unique}/w")) == (2 if loaded else 1)
    connected: Any = storage.get_connection()
    assert not connected.connection_pool._in_use_connections
    client.close()
