"""Instructions per request, counted by callgrind: the guard's in-process cost as a figure that
does not move with the processor or the neighbours of a shared machine.

    .venv/bin/python bench/instructions.py [--requests N]

Each scenario runs in a process of its own under ``valgrind --tool=callgrind``, on the settings,
views and request of ``bench/guard_overhead.py``: every view is called once first (the chain
verified, every cache filled), then the scenario's view N times. One more process makes no call
after those first ones: its count is the set-up's, and a scenario's instructions per request are
its count less that one, divided by N. The Redis rows (Redis at --redis) set the guarded
one against the undecorated view plus one ``PING`` through redis-py's client (one round trip),
and plus the guard's own ``EVALSHA`` sent as the guard sends it (``redis_topology.KeyedScript``,
on a connection of the client's pool without the client's wrapping): the difference to that
row is the guard's work around its one command (the server's work and the kernel's are not in
the count). An instruction is not a unit of time (cache misses and
branch mispredictions cost none here), so this complements the timed benchmark, never replaces
it; what it gives is a ratio two sittings can compare. Needs valgrind (Debian: ``valgrind``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import guard_overhead as bench
import limits

SETUP = "set-up only"
SETUP_REDIS = "set-up only, Redis limiter"
UNDECORATED = "undecorated view"
MEMORY = "hookshield, cache hit, memory limiter"
QUIET = "hookshield, cache hit, memory limiter, Django's default LOGGING"
BARE_PING = "undecorated view + one PING (redis-py client)"
BARE_EVALSHA = "undecorated view + the guard's own EVALSHA, sent as the guard sends it"
REDIS = "hookshield, cache hit, Redis limiter, Django's default LOGGING"
SCENARIOS = (UNDECORATED, MEMORY, QUIET, BARE_PING, BARE_EVALSHA, REDIS)
COLLECTED = re.compile(rb"Collected : (\d+)")


def child(scenario: str, requests: int, redis_url: str) -> None:
    """The process valgrind counts: set up, make every call once, then ``scenario``'s N times."""
    from django.test import override_settings

    from hookshield.core.redis_hit import hit_script
    from hookshield.core.redis_topology import keyed_script, open_storage
    from hookshield.django import webhook

    on_redis = scenario in (REDIS, SETUP_REDIS)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        directory = Path(tmp)
        certs = bench.configure(directory, redis_url)
        hit = bench.make_request(certs, "allowed")
        undecorated = bench.rewound(bench.plain_view, hit)
        guarded = bench.rewound(webhook("limited")(bench.guarded_view), hit)
        # The script the guard sends for the bench's one limit and no claim, by the guard's
        # sender on a storage as the guard's, to a key of its own.
        storage = open_storage(redis_url, "RATE_LIMIT_STORAGE")
        client: Any = storage.get_connection()
        rate = limits.parse(bench.RATE)
        command = keyed_script(storage, hit_script([(rate.amount, rate.get_expiry())], 0))
        key = storage.prefixed_key("bench-instructions:{bare}")

        def bare() -> Any:
            answer = command([key], [time.time()])
            assert not isinstance(answer, list), "refused: more requests than the rate"
            return undecorated()

        def ping() -> Any:
            client.ping()
            return undecorated()

        client.delete(key)
        for call in (undecorated, guarded, bare, ping):
            assert call().status_code == 204
        if on_redis:  # the guard rebuilt on Redis, its connection made and script loaded
            stack.enter_context(
                override_settings(HOOKSHIELD=bench.hookshield_settings(directory, redis_url))
            )
            bench.reset_limiter()  # what an earlier run left in Redis
            assert guarded().status_code == 204
        if "default LOGGING" in scenario:
            stack.enter_context(bench.default_logging())
        bench.reset_limiter()  # N more hits stay below the rate
        client.delete(key)
        made = {UNDECORATED: undecorated, BARE_EVALSHA: bare, BARE_PING: ping}
        call = made.get(scenario, guarded)
        response = None
        for _ in range(requests if scenario in SCENARIOS else 0):
            response = call()
        assert response is None or response.status_code == 204, scenario  # never refused


def count(scenario: str, requests: int, redis_url: str) -> int:
    """Instructions of the whole child process, as callgrind reports them."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        scenario,
        "--requests",
        str(requests),
        "--redis",
        redis_url,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in every process
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    found = COLLECTED.search(done.stderr)
    if done.returncode or not found:
        raise SystemExit(f"{scenario}: valgrind failed\n{done.stderr.decode()[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.redis)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind not found (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    runs = (SETUP, SETUP_REDIS, *SCENARIOS)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counted = pool.map(lambda s: count(s, args.requests, args.redis), runs)
        totals = dict(zip(runs, counted, strict=True))
    per = {
        s: (totals[s] - totals[SETUP_REDIS if s == REDIS else SETUP]) / args.requests
        for s in SCENARIOS
    }
    base = per[UNDECORATED]
    print(f"instructions per request (callgrind), {args.requests} requests per scenario\n")
    print("| scenario | instructions / request | added | vs undecorated |")
    print("| --- | ---: | ---: | ---: |")
    for scenario, value in per.items():
        print(
            f"| {scenario} | {value / 1000:.1f} k | {(value - base) / 1000:+.1f} k "
            f"| {value / base:.2f}x |"
        )
    print(
        f"\nThe guarded Redis path beyond one round trip (the Redis row less the PING row): "
        f"{(per[REDIS] - per[BARE_PING]) / 1000:+.1f} k per request; beyond its own "
        f"EVALSHA: {(per[REDIS] - per[BARE_EVALSHA]) / 1000:+.1f} k; the "
        f"memory path (default LOGGING): {(per[QUIET] - base) / 1000:+.1f} k."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
