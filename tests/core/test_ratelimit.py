from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import pickle
import socket
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from limits import RateLimitItem
from limits.storage import RedisClusterStorage

from hookshield.core.errors import Code, ConfigurationError, Rejection
from hookshield.core.ratelimit import (
    RateLimiter,
    RateLimitFailure,
    SweptMemoryStorage,
    parse_rates,
)
from hookshield.core.redis_topology import STORAGE_TIMEOUT

FIVE_PER_MINUTE = parse_rates("5/minute", "RATE")
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once


def burst(
    limiter: RateLimiter,
    endpoint: str,
    identity: str,
    n: int,
    limits: tuple[RateLimitItem, ...] = FIVE_PER_MINUTE,
) -> list[Rejection | None]:
    return [limiter.hit(endpoint, identity, limits) for _ in range(n)]


def test_parse_rates() -> None:
    assert [str(i) for i in parse_rates("100/minute", "R")] == ["100 per 1 minute"]
    assert len(parse_rates("10/second; 1000/hour", "R")) == 2
    assert len(parse_rates(["10/second", "1000/hour"], "R")) == 2
    with pytest.raises(ConfigurationError, match=r"R = 'often'"):
        parse_rates("often", "R")


def test_bad_storage_uri() -> None:
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_STORAGE"):
        RateLimiter("memcached://127.0.0.1:11211")


def test_keys_carry_the_endpoint_as_a_cluster_hash_tag() -> None:
    tag, digest = RateLimiter.identifiers("payments", "spiffe://corp.example/a")
    assert tag == "{payments}"
    assert len(digest) == 32
    assert RateLimiter.identifiers("payments", "spiffe://corp.example/b")[1] != digest


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


def test_the_sixth_request_in_a_minute_is_refused(storage: str, unique: str) -> None:
    results = burst(RateLimiter(storage), unique, "spiffe://corp.example/a", 7)
    assert results[:5] == [None] * 5
    for refused in results[5:]:
        assert refused is not None
        assert refused.code is Code.RATE_LIMITED
        assert refused.status == 429
        headers = dict(refused.headers)
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert headers["RateLimit-Policy"] == '"5-per-1-minute";q=5;w=60'
        assert headers["RateLimit"] == f'"5-per-1-minute";r=0;t={headers["Retry-After"]}'


def test_identities_and_endpoints_count_separately(storage: str, unique: str) -> None:
    limiter = RateLimiter(storage)
    assert all(r is None for r in burst(limiter, unique, "spiffe://corp.example/a", 5))
    assert burst(limiter, unique, "spiffe://corp.example/b", 1) == [None]
    assert burst(limiter, unique + "x", "spiffe://corp.example/a", 1) == [None]
    assert burst(limiter, unique, "spiffe://corp.example/a", 1)[0] is not None


def test_several_limits_the_tightest_refuses(storage: str, unique: str) -> None:
    limits = parse_rates("3/second; 100/hour", "RATE")
    results = burst(RateLimiter(storage), unique, "id", 4, limits)
    assert results[:3] == [None] * 3
    refused = results[3]
    assert refused is not None
    assert dict(refused.headers)["RateLimit-Policy"] == (
        '"3-per-1-second";q=3;w=1, "100-per-1-hour";q=100;w=3600'
    )
    assert dict(refused.headers)["RateLimit"].startswith('"3-per-1-second";r=0;t=')


def test_no_rate_means_no_limit(unique: str) -> None:
    assert burst(RateLimiter(), unique, "id", 50, ()) == [None] * 50


def test_unreachable_storage_local_counts_per_process(
    unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hookshield.ratelimit")
    limiter = RateLimiter(DOWN, failure=RateLimitFailure.LOCAL)
    results = burst(limiter, unique, "id", 7)
    assert results[:5] == [None] * 5
    assert all(r is not None and r.code is Code.RATE_LIMITED for r in results[5:])
    # Logged once, however many requests fell back.
    assert len(caplog.records) == 1
    assert "RATE_LIMIT_FAILURE=local" in caplog.records[0].getMessage()


@pytest.mark.parametrize("failure", list(RateLimitFailure))
def test_an_outage_is_logged_at_most_once_a_minute_in_every_mode(
    unique: str, caplog: pytest.LogCaptureFixture, failure: RateLimitFailure
) -> None:
    """Each retry 5 s after a failure fails again; the line comes back only a minute later."""
    caplog.set_level(logging.ERROR, logger="hookshield.ratelimit")
    now = [1000.0]
    limiter = RateLimiter(DOWN, failure=failure, monotonic=lambda: now[0])
    logged = []
    for now[0] in (1000.0, 1006.0, 1012.0, 1055.0, 1061.0):  # each after the 5 s pause
        limiter.hit(unique, "id", FIVE_PER_MINUTE)
        logged.append(len(caplog.records))
    assert logged == [1, 1, 1, 1, 2]
    assert f"RATE_LIMIT_FAILURE={failure.value}" in caplog.records[-1].getMessage()
    assert all(r.levelno == logging.ERROR for r in caplog.records)


def test_a_silent_storage_times_out_and_is_left_alone_meanwhile(unique: str) -> None:
    """A Redis that accepts connections and never answers (a hung node): the request gets the
    failure mode once the timeout passes, and the next ones within the pause do not wait."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    try:
        now = [1000.0]
        uri = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        limiter = RateLimiter(uri, failure=RateLimitFailure.DENY, monotonic=lambda: now[0])
        assert limiter.redis is not None
        pool = cast(Any, limiter.redis.get_connection()).connection_pool
        assert pool.connection_kwargs["socket_timeout"] == STORAGE_TIMEOUT  # 0.5 s
        for _ in range(3):
            refused = limiter.hit(unique, "id", FIVE_PER_MINUTE)
            assert refused is not None
            assert refused.code is Code.RATE_LIMIT_UNAVAILABLE
        assert len(held) == 1  # asked once: the other two were answered without waiting
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_unreachable_storage_deny_answers_503(unique: str) -> None:
    refused = RateLimiter(DOWN, failure=RateLimitFailure.DENY).hit(unique, "id", FIVE_PER_MINUTE)
    assert refused is not None
    assert refused.code is Code.RATE_LIMIT_UNAVAILABLE
    assert refused.status == 503
    assert dict(refused.headers)["Retry-After"] == "5"


def test_unreachable_storage_allow_lets_everything_through(unique: str) -> None:
    assert burst(RateLimiter(DOWN, failure=RateLimitFailure.ALLOW), unique, "id", 10) == [None] * 10


def test_storage_is_retried_after_a_pause(redis_url: str, unique: str) -> None:
    ticks = [0.0]
    limiter = RateLimiter(redis_url, monotonic=lambda: ticks[0])
    # Simulate an outage by pointing the shared limiter at a dead server, then back (the
    # windows kept per caller keep the scripts they were first sent with: forgotten here).
    healthy = limiter._script
    limiter._script = RateLimiter(DOWN)._script
    assert limiter.hit(unique, "id", FIVE_PER_MINUTE) is None  # counted locally
    limiter._script = healthy
    limiter._windows.clear()
    ticks[0] = 1.0
    assert limiter.hit(unique, "id", FIVE_PER_MINUTE) is None  # still local: within the pause
    assert (
        limiter._local.get_window_stats(FIVE_PER_MINUTE[0], *limiter.identifiers(unique, "id"))[1]
        == 3
    )
    ticks[0] = 10.0
    assert limiter.hit(unique, "id", FIVE_PER_MINUTE) is None  # back on Redis
    remaining = limiter._limiter.get_window_stats(
        FIVE_PER_MINUTE[0], *limiter.identifiers(unique, "id")
    )[1]
    assert remaining == 4


def _worker(url: str, endpoint: str, count: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    limiter = RateLimiter(url)
    limits = parse_rates("100/minute", "RATE")
    results.put(
        sum(
            limiter.hit(endpoint, "spiffe://corp.example/flood", limits) is None
            for _ in range(count)
        )
    )


def test_four_processes_share_one_limit_on_redis(redis_url: str, unique: str) -> None:
    """Given 4 OS processes sending 500 requests in total against 100/minute, exactly 100 pass."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [
        context.Process(target=_worker, args=(redis_url, unique, 125, results)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    accepted = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert sum(accepted) == 100


def test_memory_storage_sweeps_on_the_request_path_instead_of_starting_timers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fails loudly should a limits release rename what the sweep hooks into.
    assert SweptMemoryStorage.hooks_present()
    limiter = RateLimiter()
    storage = limiter._limiter.storage
    assert isinstance(storage, SweptMemoryStorage)
    storage.timer.join()  # the one timer limits' constructor starts
    started: list[object] = []

    def timer(*args: object, **kwargs: object) -> SimpleNamespace:
        started.append(args)
        return SimpleNamespace(start=lambda: None, is_alive=lambda: False)

    monkeypatch.setattr(threading, "Timer", timer)
    assert burst(limiter, "payments", "id", 7).count(None) == 5
    assert started == []  # limits' own MemoryStorage starts one here, its timer having ended


def test_memory_storage_drops_expired_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    import limits.storage.memory as memory

    now = [1000.0]
    monkeypatch.setattr(memory, "time", SimpleNamespace(time=lambda: now[0]))
    storage = SweptMemoryStorage()
    storage.SWEEP_INTERVAL = 0.0  # sweep on every hit
    for _ in range(3):
        assert storage.acquire_entry("k", 10, 1)
    assert len(storage.events["k"]) == 3
    now[0] += 5  # all three have left their 1-second window
    assert storage.acquire_entry("k", 10, 1)
    assert len(storage.events["k"]) == 1


def limits_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """limits' clock, set by the test through the list returned; and limits' own storage,
    which starts a sweeping timer per hit, without one (sweeps change no answer)."""
    import limits.storage.memory as memory

    now = [1000.0]
    monkeypatch.setattr(memory, "time", SimpleNamespace(time=lambda: now[0]))

    def timer(*args: object, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(start=lambda: None, is_alive=lambda: True)

    monkeypatch.setattr(threading, "Timer", timer)
    return now


@pytest.mark.parametrize("seed", range(5))
def test_memory_storage_counts_as_limits_own_does(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    import random

    import limits.storage.memory as memory

    now = limits_clock(monkeypatch)
    ours, theirs = SweptMemoryStorage(), memory.MemoryStorage()
    draw = random.Random(seed)  # noqa: S311 (a reproducible sequence of hits)
    answers = []
    for _ in range(2000):
        now[0] += draw.choice([0.0, 0.0, 0.01, 0.3, 1.0, 2.5])
        key, limit, expiry = draw.choice("ab"), draw.randint(1, 6), draw.randint(1, 3)
        amount = draw.randint(1, 3)
        answer = ours.acquire_entry(key, limit, expiry, amount)
        assert answer == theirs.acquire_entry(key, limit, expiry, amount)
        assert ours.get_moving_window(key, limit, expiry) == theirs.get_moving_window(
            key, limit, expiry
        )
        answers.append(answer)
    assert True in answers  # both ways were taken
    assert False in answers


@pytest.mark.parametrize("ours_swept", [True, False], ids=["swept", "never-swept"])
@pytest.mark.parametrize("seed", range(3))
def test_memory_storage_counts_as_limits_own_does_under_large_limits(
    monkeypatch: pytest.MonkeyPatch, seed: int, ours_swept: bool
) -> None:
    """Windows of hundreds and thousands of entries, limits' storage swept after every hit:
    the same answers and windows, whether this storage is swept as often (then the same
    entries kept, in a deque where limits' list copies itself on every hit) or never (then
    every read walks past the entries that left the window; with none left in it, the
    window's start is the oldest entry kept, which the sweeps make differ)."""
    import random
    from collections import deque

    import limits.storage.memory as memory

    now = limits_clock(monkeypatch)
    ours, theirs = SweptMemoryStorage(), memory.MemoryStorage()
    ours.SWEEP_INTERVAL = 0.0 if ours_swept else math.inf  # on every hit, or after the first
    draw = random.Random(seed)  # noqa: S311 (a reproducible sequence of hits)
    shapes = {"a": (1000, 30), "b": (200, 5)}  # a key's limit and window are fixed
    refused = emptied = 0
    for _ in range(12000):
        # About 50 hits a second on each key, and now and then a pause that empties b's window.
        now[0] += draw.choices([0.0, 0.001, 0.002, 0.05, 6.0], [30, 30, 20, 19, 0.05])[0]
        key = draw.choice("ab")
        limit, expiry = shapes[key]
        answer = ours.acquire_entry(key, limit, expiry)
        assert answer == theirs.acquire_entry(key, limit, expiry)
        theirs._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        for each, (its_limit, its_expiry) in shapes.items():
            start, count = ours.get_moving_window(each, its_limit, its_expiry)
            their_start, their_count = theirs.get_moving_window(each, its_limit, its_expiry)
            assert count == their_count
            if count or ours_swept:
                assert start == their_start
            emptied += count == 0
        refused += not answer
    assert refused  # the windows filled
    assert emptied  # ...and emptied
    for key in shapes:
        kept = ours.events.get(key)
        assert isinstance(kept, deque)
        if ours_swept:
            assert [e.atime for e in kept] == [e.atime for e in theirs.events.get(key, [])]
        else:
            assert len(kept) > len(theirs.events.get(key, []))  # expired entries walked past


def run_interleaved(threads: list[threading.Thread]) -> None:
    """Start ``threads`` and wait for them, switching between them often."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)


class DropCounting(dict[str, Any]):
    """A memory storage's ``events`` that counts the keys the sweep drops."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def pop(self, *args: Any) -> Any:
        self.dropped += 1
        return super().pop(*args)


def test_memory_storage_is_consistent_under_threads_and_sweeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Threads hit one key and read its window while every hit sweeps, on a clock that
    advances on every read and now and then jumps past the window, so that entries expire and
    the sweep drops the key over and over: no error, and never more than the limit in the
    window."""
    import itertools

    import limits.storage.memory as memory

    ticks, jumped = itertools.count(), [0]
    clock = SimpleNamespace(time=lambda: 1000 + (next(ticks) + jumped[0]) / 1000)
    monkeypatch.setattr(memory, "time", clock)

    storage = SweptMemoryStorage()
    storage.SWEEP_INTERVAL = 0.0
    storage.events = events = DropCounting()
    failures: list[BaseException] = []
    counts: list[int] = []
    answers: list[bool] = []

    def hits() -> None:
        try:
            for i in range(4000):
                answers.append(storage.acquire_entry("k", 20, 1))
                if i % 200 == 199:
                    jumped[0] += 2000  # two windows later: every entry has expired
        except BaseException as exc:
            failures.append(exc)

    def reads() -> None:
        try:
            for _ in range(4000):
                counts.append(storage.get_moving_window("k", 20, 1)[1])
        except BaseException as exc:
            failures.append(exc)

    run_interleaved([threading.Thread(target=work) for work in (hits, hits, hits, reads, reads)])
    assert failures == []
    assert events.dropped  # the sweep dropped the key while the threads ran
    assert False in answers  # the window filled (each thread alone hits it 200 times in a row)
    assert all(0 <= count <= 20 for count in counts)


def test_memory_storage_loses_no_hit_and_adds_none_under_threads_and_sweeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Threads hit one key in rounds; between rounds the clock passes the window, so the first
    hits of each round meet a sweep (on every hit) that finds the key's entries expired and
    drops it. A hit counted into a window the sweep then dropped, or a window made twice,
    would let more requests through than the limit: each round admits exactly the limit."""
    now = limits_clock(monkeypatch)

    class Yielding(SweptMemoryStorage):
        def _entries(self, key: str) -> Any:
            entries = super()._entries(key)
            time.sleep(0)  # other threads run between this read and what follows from it
            return entries

    storage = Yielding()
    storage.SWEEP_INTERVAL = 0.0
    storage.events = events = DropCounting()
    threads, rounds, hits, limit = 4, 300, 4, 5  # 16 hits a round against 5

    def next_round() -> None:
        now[0] += 2.0  # past the 1 s window: every entry has expired

    barrier = threading.Barrier(threads, action=next_round)
    admitted = [[0] * rounds for _ in range(threads)]
    failures: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for round_ in range(rounds):
                barrier.wait()
                for _ in range(hits):
                    admitted[thread][round_] += storage.acquire_entry("k", limit, 1)
        except BaseException as exc:
            failures.append(exc)
            barrier.abort()

    run_interleaved([threading.Thread(target=work, args=(n,)) for n in range(threads)])
    assert failures == []
    assert [sum(each[r] for each in admitted) for r in range(rounds)] == [limit] * rounds
    assert storage.get_moving_window("k", limit, 1)[1] == limit
    # The sweep dropped the key at most new rounds (not where a hit beat it to the old window).
    assert events.dropped > rounds // 2


def test_memory_storage_makes_one_lock_per_key_for_threads_asking_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread switch while a key's lock is made (limits makes it in a Python function) must
    not give two threads two locks: each would make the key's window, and one's hit is lost."""
    make = threading.RLock

    def slow_lock() -> Any:
        lock = make()
        time.sleep(0.001)  # another thread asks for the same key meanwhile
        return lock

    monkeypatch.setattr(threading, "RLock", slow_lock)
    storage = SweptMemoryStorage()
    got: list[Any] = []
    askers = [threading.Thread(target=lambda: got.append(storage.locks["k"])) for _ in range(8)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert len(got) == 8
    assert all(lock is got[0] for lock in got)


def test_memory_storage_pickles_with_its_counts() -> None:
    storage = SweptMemoryStorage()
    assert storage.acquire_entry("k", 2, 60)
    copy = pickle.loads(pickle.dumps(storage))  # noqa: S301 (bytes this test just made)
    assert copy.acquire_entry("k", 2, 60)
    assert not copy.acquire_entry("k", 2, 60)


def test_one_node_fails_as_a_whole_a_cluster_by_slot(redis_url: str) -> None:
    from redis.crc import key_slot

    from hookshield.core.redis_topology import WHOLE, fault_domain, open_storage

    assert fault_domain(open_storage(redis_url, "RATE_LIMIT_STORAGE"), "payments") == WHOLE
    cluster = RedisClusterStorage.__new__(RedisClusterStorage)  # no cluster needed for a slot
    assert fault_domain(cluster, "payments") == key_slot(b"payments")
    assert fault_domain(cluster, "payments") != fault_domain(cluster, "refunds")
