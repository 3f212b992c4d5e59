"""What the one-round-trip script saves a signed, rated request: the rate count and the replay
claim on Redis as two commands (the limiter, then the replay store's claim) against one
``EVALSHA``, with a bare ``PING`` on the same client as the yardstick of one round trip.

    .venv/bin/python bench/redis_round_trips.py [--requests N] [--repeat R] [--redis URL]

Both scenarios run the core objects the guard runs (``RateLimiter``, ``RedisReplayStore``) on
one client, with a fresh delivery id per request and a rate never exceeded; a figure is the
best of R runs per request, the median beside it. The keys of each run are deleted afterwards.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import redis

from hookshield.core.ratelimit import RateLimiter, parse_rates
from hookshield.core.replay import RedisReplayStore, claim_token, replay_key

IDENTITY = "spiffe://corp.example/payments-gateway"
RATES = parse_rates("1000000/hour; 1000000/day", "RATE")  # two windows, never exceeded
TTL = 600


def two_commands(limiter: RateLimiter, store: RedisReplayStore, endpoint: str) -> None:
    assert limiter.hit(endpoint, IDENTITY, RATES) is None
    assert store.claim(replay_key(endpoint, uuid.uuid4().hex), TTL)


def one_command(limiter: RateLimiter, store: RedisReplayStore, endpoint: str) -> None:
    claim = (replay_key(endpoint, uuid.uuid4().hex), TTL, claim_token())
    assert limiter.hit_and_claim(endpoint, IDENTITY, RATES, claim) == (None, True)


def ping(limiter: RateLimiter, store: RedisReplayStore, endpoint: str) -> None:
    # The yardstick: one bare round trip on the same client and connection pool.
    del store, endpoint
    assert limiter.redis is not None
    assert limiter.redis.get_connection().ping()


def run(
    step: Callable[[RateLimiter, RedisReplayStore, str], None], url: str, requests: int
) -> float:
    limiter = RateLimiter(url)
    assert limiter.redis is not None
    store = RedisReplayStore.sharing(limiter.redis)
    endpoint = "bench-" + uuid.uuid4().hex[:8]
    step(limiter, store, endpoint)  # connected, script loaded
    try:
        started = time.perf_counter()
        for _ in range(requests):
            step(limiter, store, endpoint)
        return (time.perf_counter() - started) / requests
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"hookshield*{{{endpoint}}}*", count=1000):
            client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    scenarios = {
        "one PING (a bare round trip)": ping,
        "rate count, then the claim (2 commands)": two_commands,
        "one EVALSHA (rate count and claim)": one_command,
    }
    results: dict[str, list[float]] = {name: [] for name in scenarios}
    in_redis: list[float] = []  # Redis's own µs per EVALSHA, run by run
    server = redis.Redis.from_url(args.redis)
    for _ in range(args.repeat):  # in turns, so both see the same neighbours
        for name, step in scenarios.items():
            before = _evalsha_stats(server)
            results[name].append(run(step, args.redis, args.requests))
            if step is one_command:
                after = _evalsha_stats(server)
                in_redis.append((after[1] - before[1]) / (after[0] - before[0]))
    print(f"{args.requests} signed, rated requests x {args.repeat} runs on {args.redis}")
    for name, times in results.items():
        best, median = min(times) * 1e6, statistics.median(times) * 1e6
        print(f"  {name:42s} {best:7.1f} µs/request (median {median:.1f})")
    own = statistics.median(in_redis)
    print(
        f"  Redis's own time per EVALSHA (INFO commandstats): median {own:.1f} µs, "
        f"runs {min(in_redis):.1f}-{max(in_redis):.1f}"
    )


def _evalsha_stats(server: redis.Redis) -> tuple[int, int]:
    """Calls and microseconds Redis has spent in EVALSHA so far (the whole script's run)."""
    stats = server.info("commandstats").get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return int(stats["calls"]), int(stats["usec"])


if __name__ == "__main__":
    main()
