"""Replay protection: each (endpoint, webhook-id) is accepted once within twice the tolerance.

A store only answers "first time or not"; the guard decides what an unreachable store means
(it refuses with 503: replay protection fails closed). ``release`` gives an id back when the
view failed, so the sender's retry of the same delivery is not refused as a replay. Each claim
stores a random token of its own, and a release names it: it deletes that claim only, never
one made since for the same id (after the first expired).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from limits.storage import RedisStorage

from hookshield.core.errors import ConfigurationError
from hookshield.core.redact import without_credentials
from hookshield.core.redis_topology import (
    GIVE_BACK,
    REDIS_SCHEMES,
    fault_domain,
    keyed_script,
    open_storage,
    outages,
    storage_errors,
    unconfirmed_claims,
)

__all__ = [
    "REPLAY_SCHEMES",
    "MemoryReplayStore",
    "RedisReplayStore",
    "ReplayStore",
    "StoreUnavailable",
    "check_replay_uri",
    "claim_token",
    "replay_key",
]

# memory:// and the Redis URIs RATE_LIMIT_STORAGE takes (unix:// as redis-py spells
# redis+unix://); anything else without "://" is a cache alias.
REPLAY_SCHEMES = ("memory", "unix", *REDIS_SCHEMES)


def check_replay_uri(value: str, where: str) -> None:
    scheme, sep, _ = value.partition("://")
    if sep and scheme not in REPLAY_SCHEMES:
        raise ConfigurationError(
            f"{where} = {without_credentials(value)!r}: use a Django cache alias, memory://, "
            "or a redis:// (rediss://, redis+cluster://, redis+sentinel://, valkey://) URI"
        )


class StoreUnavailable(Exception):
    """The store could not be asked (network, timeout, misconfiguration)."""


class ReplayStore(Protocol):
    networked: bool

    def claim(self, key: str, ttl_s: int, token: str | None = None) -> bool:
        """True only the first time ``key`` is claimed within ``ttl_s`` seconds; the claim
        stores ``token`` (``claim_token()``; one of its own when None). A token is never used
        for two claims: on Redis a claim finding its own token counts as made (the client's
        retry of the same command)."""

    def release(self, key: str, token: str | None = None, ttl_s: int = 0) -> None:
        """Forget the claim of ``key`` that stores ``token`` (its delivery was not processed);
        any claim of ``key`` when None. ``ttl_s``: how long the claim may still hold, for a
        store that gives it back later when this release fails."""


def claim_token() -> str:
    """The value a replay claim stores: its own, so that only it is ever given back (after a
    lost answer, or when its delivery's view failed), and a client's retry of the command that
    made it finds it its own. 24 hexadecimal characters (the database store's column)."""
    return secrets.token_hex(12)


def replay_key(endpoint: str, delivery_id: str) -> str:
    # The endpoint as a hash tag keeps its keys in one Redis Cluster slot; the id is digested
    # so any printable id makes a short key.
    return (
        f"hookshield:replay:{{{endpoint}}}:{hashlib.sha256(delivery_id.encode()).hexdigest()[:32]}"
    )


class MemoryReplayStore:
    """One process only: a bounded dict with lazy expiry. Full means unavailable (fail closed)."""

    networked = False

    def __init__(
        self, *, max_entries: int = 1_000_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # key -> (expiry, token), oldest first
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self._next_purge = -math.inf
        self._lock = threading.Lock()

    def claim(self, key: str, ttl_s: int, token: str | None = None) -> bool:
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            held = self._entries.get(key)
            if held is not None and held[0] > now:
                return False
            if len(self._entries) >= self._max and now >= self._next_purge:
                self._purge(now)
            if len(self._entries) >= self._max:
                raise StoreUnavailable(f"memory replay store is full ({self._max} ids)")
            self._entries[key] = (now + ttl_s, token or claim_token())
            self._entries.move_to_end(key)
            return True

    def _drop_expired(self, now: float) -> None:
        """The expired entries ahead of the oldest live one (insertion order)."""
        while self._entries:
            oldest_key, (expiry, _) = next(iter(self._entries.items()))
            if expiry > now:
                return
            del self._entries[oldest_key]

    def _purge(self, now: float) -> None:
        """Every expired entry: endpoints with different TTLs expire out of insertion order, so
        some wait behind a live one. A pass over the whole store, so a full store makes it at
        most once a second."""
        self._next_purge = now + 1.0
        for stale in [k for k, (ends, _) in self._entries.items() if ends <= now]:
            del self._entries[stale]

    def release(self, key: str, token: str | None = None, ttl_s: int = 0) -> None:
        with self._lock:
            held = self._entries.get(key)
            if held is not None and (token is None or held[1] == token):
                del self._entries[key]


# SET NX EX, storing the claim's token ARGV[1]; also 1 when the key holds that very token (the
# client's retry of a command whose answer it lost).
CLAIM = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    return 1
end
if redis.call('get', KEYS[1]) == ARGV[1] then
    return 1
end
return 0
"""


class RedisReplayStore:
    """``SET key token NX EX ttl`` in a script: one atomic command, so several processes and
    hosts agree.

    On one node, a Sentinel group's master or the cluster node serving the endpoint's slot
    (the key's hash tag); ``sharing`` puts it on the rate limiter's client, one pool for both.
    A fault domain (the storage, or a cluster slot) that failed is refused at once for a few
    seconds, as the limiter leaves it alone: a silent node must not hold every request. A claim
    whose answer was lost is given back when its domain answers again (``UnconfirmedClaims``).
    """

    networked = True

    def __init__(self, url: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._bind(open_storage(url, "REPLAY_STORAGE"), monotonic)

    @classmethod
    def sharing(
        cls, storage: RedisStorage, *, monotonic: Callable[[], float] = time.monotonic
    ) -> RedisReplayStore:
        """A store on the client (and connection pool) of limits' ``storage``."""
        store = cls.__new__(cls)
        store._bind(storage, monotonic)
        return store

    def _bind(self, storage: RedisStorage, monotonic: Callable[[], float]) -> None:
        self.storage = storage
        # A Sentinel group's master, never a replica; redis.Redis or redis.cluster.RedisCluster.
        self._redis: Any = storage.get_connection()
        self._errors = storage_errors(storage)
        self._outages = outages(storage)
        self._unconfirmed = unconfirmed_claims(storage)
        self._claim = keyed_script(storage, CLAIM)
        self._give_back = keyed_script(storage, GIVE_BACK)
        self._monotonic = monotonic

    def _up(self, key: str) -> tuple[int, float]:
        """The fault domain of ``key`` and the time, unless it failed moments ago."""
        domain, now = fault_domain(self.storage, key), self._monotonic()
        if self._outages.down(domain, now):
            raise StoreUnavailable("redis: unreachable moments ago, asked again shortly")
        return domain, now

    def _failed(self, domain: int, exc: Exception) -> StoreUnavailable:
        self._outages.mark(domain, self._monotonic())
        return StoreUnavailable(f"redis: {type(exc).__name__}")

    def claim(self, key: str, ttl_s: int, token: str | None = None) -> bool:
        domain, now = self._up(key)
        try:
            if self._unconfirmed.pending:
                self._unconfirmed.settle(domain, now)
        except self._errors as exc:
            raise self._failed(domain, exc) from exc
        token = token or claim_token()
        try:
            return bool(self._claim([key], [token, ttl_s]))
        except self._errors as exc:
            # It may have been stored: given back before the next claim on this domain.
            self._unconfirmed.add(domain, key, token, now + ttl_s)
            raise self._failed(domain, exc) from exc

    def release(self, key: str, token: str | None = None, ttl_s: int = 0) -> None:
        # Always tried, even on a domain that failed moments ago: a claim held on after its
        # delivery failed refuses the sender's retry (409) until it expires. Releases come only
        # after a failure, so they are few.
        try:
            if token is None:
                self._redis.delete(key)
            else:
                self._give_back([key], [token])  # deleted only while it holds its token
        except self._errors as exc:
            domain = fault_domain(self.storage, key)
            if token is not None and ttl_s > 0:  # given back before the next claim there
                self._unconfirmed.add(domain, key, token, self._monotonic() + ttl_s)
            raise self._failed(domain, exc) from exc
