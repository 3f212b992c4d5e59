"""The memory limiter's cost per hit as its moving window fills, against limits' own storage.

    .venv/bin/python bench/memory_window.py [--hits 1000] [--repeat 5]

For each limit, both storages get a window already holding ``limit - hits - 1`` entries (as
after that many admitted requests), then ``hits`` more hits, all admitted; a figure is the best
of --repeat runs, in µs per hit. Both are called through their undecorated ``acquire_entry``
(what ``RateLimiter`` calls), and limits' storage has its 10 ms sweeping timer switched off,
so the rows differ by how a window is kept alone: limits' list, which copies itself on every
hit, against hookshield's deque. Prints a table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from limits.storage import MemoryStorage
from limits.storage.memory import Entry

from hookshield.core.ratelimit import SweptMemoryStorage

LIMITS = (
    (2000, 60, "2000/minute"),
    (20000, 3600, "20000/hour"),
    (100000, 3600, "100000/hour"),
    (1000000, 86400, "1000000/day"),
)


def per_hit(storage: Any, limit: int, expiry: int, hits: int, window: list[Entry]) -> float:
    """µs per hit, the window holding ``window`` (newest first) before the first one."""
    storage.events["k"] = deque(window) if isinstance(storage, SweptMemoryStorage) else window[:]
    acquire = inspect.unwrap(type(storage).acquire_entry)
    # The window's entries were made at once, not over its span as a server makes them: a
    # collection now, so the collector does not count them as new on the clock.
    gc.collect()
    start = time.perf_counter()
    for _ in range(hits):
        if not acquire(storage, "k", limit, expiry):
            raise AssertionError("refused: the window was meant to have room")
    return (time.perf_counter() - start) / hits * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hits", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # limits' storage would start a sweeping thread every 10 ms: not what is measured here.
    threading.Timer = lambda *a, **k: SimpleNamespace(start=lambda: None, is_alive=lambda: True)  # type: ignore[assignment,misc]
    print(f"µs per hit, best of {args.repeat} runs of {args.hits} hits into a filled window\n")
    print("| limit | entries in the window | limits' MemoryStorage (list) | hookshield (deque) |")
    print("| --- | ---: | ---: | ---: |")
    for limit, expiry, label in LIMITS:
        window = [Entry(expiry) for _ in range(limit - args.hits - 1)]
        theirs = min(
            per_hit(MemoryStorage(), limit, expiry, args.hits, window) for _ in range(args.repeat)
        )
        ours = min(
            per_hit(SweptMemoryStorage(), limit, expiry, args.hits, window)
            for _ in range(args.repeat)
        )
        print(f"| {label} | {len(window)} | {theirs:.2f} | {ours:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
