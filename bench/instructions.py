"""Instructions per request, counted by callgrind: the guard's in-process cost as a figure that
does not move with the processor or the neighbours of a shared machine.

    .venv/bin/python bench/instructions.py [--requests N]

Each scenario runs in a process of its own under ``valgrind --tool=callgrind``, on the settings,
views and request of ``bench/guard_overhead.py``: every view is called once first (the chain
verified, every cache filled), then the scenario's view N times. One more process makes no call
after those first ones: its count is the set-up's, and a scenario's instructions per request are
its count less that one, divided by N. An instruction is not a unit of time (cache misses and
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import guard_overhead as bench

SETUP = "set-up only"
UNDECORATED = "undecorated view"
SCENARIOS = (
    UNDECORATED,
    "hookshield, cache hit, memory limiter",
    "hookshield, cache hit, memory limiter, Django's default LOGGING",
)
COLLECTED = re.compile(rb"Collected : (\d+)")


def child(scenario: str, requests: int) -> None:
    """The process valgrind counts: set up, call every view once, then ``scenario`` N times."""
    from hookshield.django import webhook

    with tempfile.TemporaryDirectory() as tmp:
        certs = bench.configure(Path(tmp), "redis://127.0.0.1:6379/14")
        hit = bench.make_request(certs, "allowed")
        calls: dict[str, Callable[[], Any]] = {
            UNDECORATED: bench.rewound(bench.plain_view, hit),
            SCENARIOS[1]: bench.rewound(webhook("limited")(bench.guarded_view), hit),
        }
        calls[SCENARIOS[2]] = calls[SCENARIOS[1]]
        for call in calls.values():
            assert call().status_code == 204
        bench.reset_limiter()  # N more hits stay below the rate
        if scenario == SETUP:
            return
        logging = bench.default_logging() if scenario == SCENARIOS[2] else contextlib.nullcontext()
        call = calls[scenario]
        with logging:
            for _ in range(requests):
                call()


def count(scenario: str, requests: int) -> int:
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
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind not found (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(
            zip(
                (SETUP, *SCENARIOS),
                pool.map(lambda s: count(s, args.requests), (SETUP, *SCENARIOS)),
                strict=True,
            )
        )
    per = {s: (totals[s] - totals[SETUP]) / args.requests for s in SCENARIOS}
    base = per[UNDECORATED]
    print(f"instructions per request (callgrind), {args.requests} requests per scenario\n")
    print("| scenario | instructions / request | added | vs undecorated |")
    print("| --- | ---: | ---: | ---: |")
    for scenario, value in per.items():
        print(
            f"| {scenario} | {value / 1000:.1f} k | {(value - base) / 1000:+.1f} k "
            f"| {value / base:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
