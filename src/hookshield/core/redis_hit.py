"""One round trip for a request's rate limits and its replay claim: one server-side script.

The limits of an endpoint and its replay keys share a hash tag, so one ``EVALSHA`` can touch
them all, on one node or on the cluster node serving the slot. Each limit is limits' moving
window as its ``acquire_moving_window.lua`` takes one entry (the timestamp read by the client,
the entry at index ``limit - 1`` compared with ``now - expiry``, ``LPUSH``, ``LTRIM``,
``EXPIRE``), leaving the same list and TTL after every hit, in fewer calls from Lua (each
costs Redis several µs): the timestamp is pushed first, and the length ``LPUSH`` answers says
whether the window was full; only then is the oldest entry read (``LINDEX`` at ``limit``, where
the one at ``limit - 1`` went) and the push taken back (``LPOP``) on a refusal, or the list
trimmed. A request under its limits costs two calls per limit instead of four. The first
limit exceeded stops the count, the limits before it keep the hit, as when each is asked in
turn. The replay claim (``SET NX EX``) is made only when every limit admitted the request. A
refusal comes back with the oldest entry of the full window, which is what limits'
``get_window_stats`` reads for the reset time, so no second trip is needed for ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits.storage import RedisStorage

__all__ = ["HIT_SCRIPT", "Hit", "RedisHit", "WindowKey"]

# KEYS: the windows' keys, then the replay key (when claiming).
# ARGV: timestamp, number of windows, (limit, expiry) per window, replay TTL (0: no claim).
# Returns {0, claimed} (claimed: 1, 0, or -1 when not asked) or {i, oldest} when window i refused.
HIT_SCRIPT = """
local timestamp = tonumber(ARGV[1])
local windows = tonumber(ARGV[2])
for i = 1, windows do
    local limit = tonumber(ARGV[1 + 2 * i])
    local expiry = tonumber(ARGV[2 + 2 * i])
    if limit < 1 then
        return {i, tostring(timestamp)}
    end
    if redis.call('lpush', KEYS[i], timestamp) > limit then
        local oldest = redis.call('lindex', KEYS[i], limit)
        if tonumber(oldest) >= timestamp - expiry then
            redis.call('lpop', KEYS[i])
            return {i, oldest}
        end
        redis.call('ltrim', KEYS[i], 0, limit - 1)
    end
    redis.call('expire', KEYS[i], expiry)
end
local ttl = tonumber(ARGV[3 + 2 * windows])
if ttl > 0 then
    if redis.call('set', KEYS[windows + 1], '1', 'NX', 'EX', ttl) then
        return {0, 1}
    end
    return {0, 0}
end
return {0, -1}
"""


@dataclass(frozen=True, slots=True)
class WindowKey:
    key: str  # limits' key (``item.key_for(...)``), without the storage's prefix
    limit: int
    expiry: int


@dataclass(frozen=True, slots=True)
class Hit:
    """The script's answer: the index of the window that refused and when it frees a place,
    or None and whether the claim was won (None: not asked)."""

    refused: int | None
    reset_at: float
    claimed: bool | None


class RedisHit:
    """The script registered on the client of limits' storage (one pool for everything)."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._script: Any = storage.get_connection().register_script(HIT_SCRIPT.encode())

    def __call__(self, windows: Sequence[WindowKey], claim: tuple[str, int] | None = None) -> Hit:
        """Raises what the client raises (see ``redis_topology.storage_errors``)."""
        keys = [self._storage.prefixed_key(w.key) for w in windows]
        args: list[float | int] = [time.time(), len(windows)]
        for window in windows:
            args += [window.limit, window.expiry]
        if claim is None:
            args.append(0)
        else:
            keys.append(claim[0])
            args.append(claim[1])
        index, value = self._script(keys, args)
        if int(index):
            refused = int(index) - 1
            return Hit(refused, float(value) + windows[refused].expiry, None)
        return Hit(None, 0.0, None if int(value) < 0 else bool(int(value)))
