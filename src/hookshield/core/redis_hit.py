"""One round trip for a request's rate limits and its replay claim: one server-side script.

The limits of an endpoint and its replay keys share a hash tag, so one ``EVALSHA`` can touch
them all, on one node or on the cluster node serving the slot. Each limit is limits' moving
window as its ``acquire_moving_window.lua`` takes one entry (the timestamp read by the client,
the entry at index ``limit - 1`` compared with ``now - expiry``, ``LPUSH``, ``LTRIM``,
``EXPIRE``), leaving the same list and TTL after every hit, in fewer calls from Lua (each
costs Redis several µs): the timestamp is pushed first, and the length ``LPUSH`` answers says
whether the window was full; only then is the oldest entry read (``LINDEX`` at ``limit``, where
the one at ``limit - 1`` went) and the push taken back (``LPOP``) on a refusal, or the list
trimmed. A request costs two calls per limit instead of four until ``limit`` requests have been
counted since the key last expired; from then on four, as limits' (three on a refusal, against
limits' one). The first
limit exceeded stops the count, the limits before it keep the hit, as when each is asked in
turn. The replay claim (``SET NX EX``) is made only when every limit admitted the request. A
refusal comes back with the oldest entry of the full window, which is what limits'
``get_window_stats`` reads for the reset time, so no second trip is needed for ``Retry-After``.

An endpoint's limits and replay TTL are constants, so each shape of them gets a script of its
own with them written in: the request sends its keys, the timestamp and the claim's token
alone (8 arguments instead of 13 for two limits and a claim), and Redis converts no number
back into a string (the timestamp is pushed as the client sent it, the constants are string
literals). Both cost Redis about a third of its time per ``EVALSHA`` (measured in
``bench/redis_round_trips.py``). The claim stores its token, so that a claim whose answer was
lost can be given back without touching one made since (``redis_topology.UnconfirmedClaims``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from limits.storage import RedisStorage

from hookshield.core.redis_topology import KeyedScript, direct_pool, keyed_script

__all__ = ["Hit", "HitPlan", "RedisHit", "WindowKey", "hit_script"]

SCRIPTS_KEPT = 256  # distinct (limits, replay TTL) shapes; an endpoint's are fixed

# KEYS[i]: window i's list; ARGV[1]: the timestamp. Refused by window i: {i, its oldest entry}.
_WINDOW = """\
if redis.call('lpush', KEYS[{i}], ARGV[1]) > {limit} then
    local oldest = redis.call('lindex', KEYS[{i}], '{limit}')
    if tonumber(oldest) >= tonumber(ARGV[1]) - {expiry} then
        redis.call('lpop', KEYS[{i}])
        return {{{i}, oldest}}
    end
    redis.call('ltrim', KEYS[{i}], '0', '{last}')
end
redis.call('expire', KEYS[{i}], '{expiry}')"""
_CLOSED = "do return {{{i}, ARGV[1]}} end"  # a limit below 1 admits nothing
# The last key: the replay claim, storing ARGV[2] (its token). Admitted: 1 (claimed, or held by
# this very token: the client's retry of a command whose answer it lost), 0 (taken already),
# -1 (not asked).
_CLAIM = """\
if redis.call('set', KEYS[{key}], ARGV[2], 'NX', 'EX', '{ttl}') then
    return 1
end
if redis.call('get', KEYS[{key}]) == ARGV[2] then
    return 1
end
return 0"""


def hit_script(windows: Sequence[tuple[int, int]], ttl: int) -> str:
    """The Lua source counting ``(limit, expiry)`` windows, then claiming for ``ttl`` s if > 0."""
    steps = [
        _WINDOW.format(i=i, limit=limit, last=limit - 1, expiry=expiry)
        if limit >= 1
        else _CLOSED.format(i=i)
        for i, (limit, expiry) in enumerate(windows, 1)
    ]
    steps.append(_CLAIM.format(key=len(windows) + 1, ttl=ttl) if ttl > 0 else "return -1")
    return "\n".join(steps)


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


# The answers of an admitted request, made once: a request admitted builds no object.
_ADMITTED = {-1: Hit(None, 0.0, None), 0: Hit(None, 0.0, False), 1: Hit(None, 0.0, True)}


class HitPlan:
    """A caller's windows as the script takes them, made once per (endpoint, caller) and kept
    with its windows: the storage's keys, the expiries, and the scripts by replay TTL (an
    endpoint has one), so that a request builds none of them again."""

    __slots__ = ("expiries", "keys", "scripts", "shape")

    def __init__(self, keys: tuple[str, ...], windows: Sequence[WindowKey]) -> None:
        self.keys = keys
        self.expiries = tuple(w.expiry for w in windows)
        self.shape = tuple((w.limit, w.expiry) for w in windows)
        self.scripts: dict[int, KeyedScript] = {}


class RedisHit:
    """The scripts, on the client of limits' storage (one pool for everything)."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._scripts: dict[tuple[tuple[tuple[int, int], ...], int], KeyedScript] = {}
        # Whether ``start`` leaves the answer to be read later (see ``KeyedScript.start``).
        self.deferred = direct_pool(storage.get_connection()) is not None

    def plan(self, windows: Sequence[WindowKey]) -> HitPlan:
        return HitPlan(tuple(self._storage.prefixed_key(w.key) for w in windows), windows)

    def _script(self, plan: HitPlan, ttl: int) -> KeyedScript:
        """The plan's script for ``ttl``, shared by the plans of the same shape."""
        shape = plan.shape, ttl
        script = self._scripts.get(shape)
        if script is None:
            if len(self._scripts) >= SCRIPTS_KEPT:
                self._scripts.clear()  # bounded; a shape dropped is made again
            script = self._scripts[shape] = keyed_script(self._storage, hit_script(*shape))
        if len(plan.scripts) >= SCRIPTS_KEPT:
            plan.scripts.clear()  # a plan meets one TTL in practice; bounded all the same
        plan.scripts[ttl] = script
        return script

    def __call__(self, plan: HitPlan, claim: tuple[str, int, str] | None = None) -> Hit:
        """``claim``: the replay key, its TTL and the token it stores. Raises what the client
        raises (see ``redis_topology.storage_errors``)."""
        return self.answer(plan, self.start(plan, claim)())

    def start(self, plan: HitPlan, claim: tuple[str, int, str] | None = None) -> Callable[[], Any]:
        """Send the hit; what reads its raw answer (``KeyedScript.start``), for ``answer``."""
        if claim is None:
            script = plan.scripts.get(0) or self._script(plan, 0)
            return script.start(plan.keys, (time.time(),))
        key, ttl, token = claim
        script = plan.scripts.get(ttl) or self._script(plan, ttl)
        return script.start((*plan.keys, key), (time.time(), token))

    @staticmethod
    def answer(plan: HitPlan, raw: Any) -> Hit:
        """The script's raw answer as a ``Hit``."""
        if isinstance(raw, list):
            refused = int(raw[0]) - 1
            return Hit(refused, float(raw[1]) + plan.expiries[refused], None)
        return _ADMITTED.get(raw) or Hit(None, 0.0, None if raw < 0 else bool(raw))
