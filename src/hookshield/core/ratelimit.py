"""Per-(endpoint, identity) rate limits on the ``limits`` library, with a fail mode for its storage.

The algorithm is limits' moving window (exact: no burst at window edges); hookshield only keys
it, answers 429 with ``Retry-After`` and the IETF ``RateLimit-Policy`` / ``RateLimit`` fields,
and decides what happens when the storage (Redis) is unreachable:

- ``local`` (default): count in this process instead, retry the storage a few seconds later, and
  log that once per interval;
- ``deny``: answer 503 ``rate_limit_unavailable``;
- ``allow``: let the request through, logged once per interval.

Keys carry the endpoint as a hash tag (``{payments}``) so that Redis Cluster keeps an endpoint's
keys in one slot, and a digest of the identity so that any SPIFFE ID makes a short, plain key.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, cast
from urllib.parse import urlparse

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, MovingWindowSupport, RedisStorage, Storage
from limits.storage.memory import Entry
from limits.strategies import MovingWindowRateLimiter

from hookshield.core.errors import Code, ConfigurationError, Rejection
from hookshield.core.redact import without_credentials
from hookshield.core.redis_hit import HitPlan, RedisHit, WindowKey
from hookshield.core.redis_topology import (
    REDIS_SCHEMES,
    RETRY_AFTER,
    WHOLE,
    Outages,
    UnconfirmedClaims,
    fault_domain,
    open_storage,
    outages,
    storage_errors,
    unconfirmed_claims,
)

__all__ = ["PendingHit", "RateLimitFailure", "RateLimiter", "parse_rates"]

logger = logging.getLogger("hookshield.ratelimit")

# A storage that failed is left alone for this long (requests count locally meanwhile), so a
# dead Redis costs one timeout per interval, not one per request. On a cluster only the slot
# that failed is left alone: endpoints served by healthy masters keep their shared counts.
RETRY_STORAGE_AFTER = RETRY_AFTER
FAILURE_LOG_INTERVAL = 60.0
WINDOWS_CACHE_SIZE = 4096


def _stamp() -> float:
    """Now, on the clock limits stamps its entries with (its own module's)."""
    return Entry(0).atime


class _Locks(defaultdict[str, threading.RLock]):
    """A lock per key, one even when threads ask for a new key at once: limits'
    ``defaultdict(threading.RLock)`` calls a Python function to make it, where a thread switch
    can give two threads two locks for one key, each then making the key's window."""

    def __missing__(self, key: str) -> threading.RLock:
        return self.setdefault(key, threading.RLock())


class SweptMemoryStorage(MemoryStorage):
    """limits' ``MemoryStorage`` for moving windows, at a cost per hit that does not grow with
    the limit, and swept on the request path once a second.

    Two changes, both measured (see BENCHMARKS.md). The answers are limits' own for one
    (limit, expiry) per key, as hookshield's keys have, and a clock that moves forward: the
    tests run this storage and limits' on the same hits and clock, and compare every answer.

    - limits keeps a key's entries in a list, newest first, and inserts each hit at its front:
      a copy of the whole list, 7-11 µs a hit with 99 000 entries in the window and about
      100 µs with a million. Here they are limits' own ``Entry`` objects in a ``deque``,
      newest first as in limits, added at the front in constant time. What a hit reads (the
      entry at ``limit - amount``) and what a refusal reads (the oldest entry in the window)
      lie at the old end, past only the entries that left the window since the last sweep.
    - ``MemoryStorage`` starts a new ``threading.Timer`` every 10 ms while hits arrive, to drop
      expired entries. In a server process, which waits on sockets between requests, those
      thread starts and GIL hand-overs cost a gunicorn worker about 200 µs of CPU per request.
      The sweep runs instead at most once per ``SWEEP_INTERVAL``, by whichever request comes,
      dropping expired entries from the old end of each key's deque. Entries are read through
      the window, so the sweep's timing changes no answer.

    Every read and change of a key's entries holds the key's lock, made once per key even
    when threads ask for it at once, and a key keeps its lock when the sweep drops its
    entries (limits drops both): a hit waiting on the lock then finds the same lock as the
    next one, never a second deque. A lock per key is bounded as the keys are: (endpoint,
    allowlist entry, limit).
    """

    SWEEP_INTERVAL = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        self._next_sweep = -math.inf
        self._sweeping = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.locks = _Locks()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        del state["_sweeping"]  # a lock does not pickle; limits drops its own locks likewise
        events = {}
        for key in list(self.events):
            with self.locks[key]:
                events[key] = list(self.events.get(key, ()))  # not a deque being changed
        state["events"] = events
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.events = {key: cast(list[Entry], deque(kept)) for key, kept in self.events.items()}
        self._sweeping = threading.Lock()
        self._next_sweep = -math.inf  # another process's clock
        self.locks = _Locks()

    def _entries(self, key: str) -> deque[Entry] | None:
        return cast("deque[Entry] | None", self.events.get(key))

    # MemoryStorage calls self.__schedule_expiry() and self.__expire_events(), which Python
    # mangles to these names: defining them here replaces the timer with the sweep.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep or not self._sweeping.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + self.SWEEP_INTERVAL
            self._MemoryStorage__expire_events()
        finally:
            self._sweeping.release()

    def _MemoryStorage__expire_events(self) -> None:
        now = _stamp()
        for key in list(self.events):
            with self.locks[key]:
                entries = self._entries(key)
                while entries and entries[-1].expiry <= now:
                    entries.pop()
                if not entries:
                    self.events.pop(key, None)  # its lock stays (see the class)
        # limits' counters (other strategies) expire as limits' own sweep expires them.
        for key, ends in list(self.expirations.items()):
            if ends <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """limits' ``acquire_entry``: admitted unless the entry at ``limit - amount`` is still
        in the window. (limits finds a short list by raising and catching an ``IndexError``,
        a third of a hit's time below the limit; this tests the length.)"""
        if amount > limit:
            return False
        self._MemoryStorage__schedule_expiry()
        with self.locks[key]:
            entries = self._entries(key)
            if entries is None:
                entries = deque()
                self.events[key] = cast(list[Entry], entries)
            entry = Entry(expiry)  # stamped now, on limits' clock
            oldest_kept = limit - amount  # the entry that must have left the window
            if len(entries) > oldest_kept and entries[oldest_kept].atime >= entry.atime - expiry:
                return False
            entries.extendleft([entry] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """limits' answer: how many entries are in the window and the oldest one's time (with
        none in it, limits' answer too: the oldest entry kept, or now)."""
        with self.locks[key]:
            timestamp = _stamp()  # after the hits that held the lock: none is newer
            edge = timestamp - expiry
            entries = self._entries(key)
            if not entries:
                return timestamp, 0
            # From the old end, past the entries that have left the window since the sweep.
            for left, entry in enumerate(reversed(entries)):
                if entry.atime > edge:
                    return entry.atime, len(entries) - left
            return entries[-1].atime, 0

    @staticmethod
    def hooks_present() -> bool:
        """True while the installed limits has the two methods this class relies on."""
        return all(
            callable(getattr(MemoryStorage, f"_MemoryStorage__{name}", None))
            for name in ("schedule_expiry", "expire_events")
        )


def _unwrapped_acquire(storage: MovingWindowSupport) -> Callable[..., bool]:
    """The memory storage's ``acquire_entry`` without limits' error-wrapping decorator.

    The decorator (applied twice, by two base classes) turns a backend's exceptions into
    ``StorageError``; counting in a list raises none, and the wrappers cost a third of a hit.
    """
    return cast(Callable[..., bool], inspect.unwrap(type(storage).acquire_entry))


def memory_storage() -> MemoryStorage:
    # Should a limits release rename the hooks, limits' own storage (correct, only slower) serves.
    cls = SweptMemoryStorage if SweptMemoryStorage.hooks_present() else MemoryStorage
    return cls(wrap_exceptions=True)


class RateLimitFailure(StrEnum):
    LOCAL = "local"
    DENY = "deny"
    ALLOW = "allow"


def parse_rates(value: str | Sequence[str], where: str) -> tuple[RateLimitItem, ...]:
    """``"100/minute"``, ``"10/second; 1000/hour"`` or a list of such strings."""
    texts = [value] if isinstance(value, str) else list(value)
    items: list[RateLimitItem] = []
    for text in texts:
        if not isinstance(text, str):
            raise ConfigurationError(f"{where} must be a rate like '100/minute', not {text!r}")
        try:
            items.extend(parse_many(text))
        except ValueError as exc:
            raise ConfigurationError(f"{where} = {text!r} is not a rate like '100/minute'") from exc
    if not items:
        raise ConfigurationError(f"{where} is empty")
    return tuple(items)


def check_storage_uri(uri: str, where: str) -> None:
    scheme = urlparse(uri).scheme
    if scheme != "memory" and scheme not in REDIS_SCHEMES:
        shown = without_credentials(uri)
        raise ConfigurationError(
            f"{where} = {shown!r}: use memory:// or a redis:// (rediss://, redis+cluster://, "
            "redis+sentinel://, valkey://) URI"
        )


def policy_name(item: RateLimitItem) -> str:
    return f"{item.amount}-per-{item.multiples}-{item.GRANULARITY.name}"


class _Window(NamedTuple):
    item: RateLimitItem
    identifiers: tuple[str, str]
    key: str  # item.key_for(*identifiers)
    expiry: int


class _Windows(NamedTuple):
    windows: tuple[_Window, ...]
    plan: HitPlan | None  # None in memory


@dataclass(frozen=True, slots=True)
class _Refusal:
    item: RateLimitItem
    reset_at: float


class _Notice:
    """Logs a storage failure at most once per interval."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last = -math.inf
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: object) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last < FAILURE_LOG_INTERVAL:
                return
            self._last = now
        logger.error(message, *args)


class PendingHit:
    """A hit whose answer is read by ``result()``: at once, or when Redis has answered (the
    caller's work meanwhile overlaps the round trip)."""

    __slots__ = ("_answer", "_error", "_finish", "in_flight")

    def __init__(
        self,
        answer: tuple[Rejection | None, bool | None] = (None, None),
        finish: Callable[[], tuple[Rejection | None, bool | None]] | None = None,
    ) -> None:
        self._answer = answer
        self._finish = finish
        self._error: BaseException | None = None
        # True while the answer is on its way (a command was sent, its answer not yet read);
        # an attribute, not a property: the guard asks on every request.
        self.in_flight = finish is not None

    def result(self) -> tuple[Rejection | None, bool | None]:
        """The rejection, if any, and the claim's outcome (None: not made), read once: later
        calls give the same answer, or raise again what reading it raised."""
        finish = self._finish
        if finish is not None:
            self._finish = None
            self.in_flight = False
            try:
                self._answer = finish()
            except BaseException as exc:
                self._error = exc
                raise
        if self._error is not None:
            raise self._error
        return self._answer


# Admitted, nothing claimed (no limit, or counted in memory): made once, as requests are.
_ADMITTED = PendingHit()


class RateLimiter:
    """Counts hits per (endpoint, identity) and refuses past the endpoint's limits."""

    def __init__(
        self,
        uri: str = "memory://",
        *,
        failure: RateLimitFailure = RateLimitFailure.LOCAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        check_storage_uri(uri, "RATE_LIMIT_STORAGE")
        self.uri = uri
        self.failure = failure
        self._monotonic = monotonic
        # A shared storage is network I/O: async views run the guard in a worker thread then.
        self.shared = urlparse(uri).scheme != "memory"
        storage: Storage = (
            open_storage(uri, "RATE_LIMIT_STORAGE") if self.shared else memory_storage()
        )
        redis = storage if isinstance(storage, RedisStorage) else None
        self._errors = storage_errors(redis) if redis is not None else ()
        self._script = RedisHit(redis) if redis is not None else None
        self._limiter = MovingWindowRateLimiter(storage)
        self._local = MovingWindowRateLimiter(memory_storage()) if self.shared else self._limiter
        # Every count in this process (the memory storage, or the fallback of a shared one).
        self._acquire = _unwrapped_acquire(cast(MovingWindowSupport, self._local.storage))
        # Shared with a replay store on this client: when each fault domain may be asked again,
        # and the claims whose answer was lost.
        self._outages = outages(redis) if redis is not None else Outages()
        self._unconfirmed = unconfirmed_claims(redis) if redis is not None else UnconfirmedClaims()
        self._notice = _Notice(monotonic)
        self._windows: dict[tuple[str, str], tuple[Sequence[RateLimitItem], _Windows]] = {}

    @property
    def redis(self) -> RedisStorage | None:
        """limits' Redis storage the counts live in (None in memory), to share with the replay
        store."""
        storage = self._limiter.storage
        return storage if isinstance(storage, RedisStorage) else None

    def reset(self) -> None:
        """Forget every count (tests and benchmarks; not for production use)."""
        self._limiter.storage.reset()
        self._local.storage.reset()

    # -- keys and answers -----------------------------------------------------------------------

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def identifiers(endpoint: str, identity: str) -> tuple[str, str]:
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        return "{" + endpoint + "}", digest

    def _windows_of(
        self, endpoint: str, identity: str, limits: Sequence[RateLimitItem]
    ) -> _Windows:
        """``windows`` and, on Redis, the script's plan of them, kept for the next hit of this
        (endpoint, caller).

        Looked up by the names alone, then checked to be for the same limits object (an
        endpoint's are compiled once): hashing the limits themselves costs more.
        """
        known = self._windows.get((endpoint, identity))
        if known is not None and known[0] is limits:
            return known[1]
        windows = self.windows(endpoint, identity, limits)
        plan = None
        if self._script is not None:
            plan = self._script.plan([WindowKey(w.key, w.item.amount, w.expiry) for w in windows])
        made = _Windows(windows, plan)
        if len(self._windows) >= WINDOWS_CACHE_SIZE:
            self._windows.clear()  # bounded: callers beyond it are keyed again, nothing is lost
        self._windows[(endpoint, identity)] = (limits, made)
        return made

    @staticmethod
    def windows(
        endpoint: str, identity: str, limits: Sequence[RateLimitItem]
    ) -> tuple[_Window, ...]:
        """Each limit with its storage key and expiry."""
        keys = RateLimiter.identifiers(endpoint, identity)
        windows = []
        for item in limits:
            key, expiry = item.key_for(*keys), item.get_expiry()
            windows.append(_Window(item, keys, key, expiry))
        return tuple(windows)

    @staticmethod
    def _rejection(limits: Sequence[RateLimitItem], refusal: _Refusal) -> Rejection:
        retry_after = max(1, math.ceil(refusal.reset_at - time.time()))
        policies = ", ".join(
            f'"{policy_name(item)}";q={item.amount};w={item.get_expiry()}' for item in limits
        )
        name = policy_name(refusal.item)
        return Rejection(
            Code.RATE_LIMITED,
            f"over {refusal.item} ({name})",
            headers=(
                ("Retry-After", str(retry_after)),
                ("RateLimit-Policy", policies),
                ("RateLimit", f'"{name}";r=0;t={retry_after}'),
            ),
        )

    def _domain(self, endpoint: str) -> int:
        storage = self.redis
        return WHOLE if storage is None else fault_domain(storage, endpoint)

    def _mark_down(self, domain: int, endpoint: str, exc: Exception) -> None:
        self._outages.mark(domain, self._monotonic())
        self._notice(
            "rate limit storage %s unreachable (%s) for endpoint %s%s; RATE_LIMIT_FAILURE=%s",
            without_credentials(self.uri),
            type(exc).__name__,
            endpoint,
            "" if domain == WHOLE else f" (cluster slot {domain})",
            self.failure.value,
        )

    def _degraded(
        self, windows: tuple[_Window, ...], limits: Sequence[RateLimitItem]
    ) -> Rejection | None:
        """The answer while the shared storage is unreachable, per ``RATE_LIMIT_FAILURE``."""
        if self.failure is RateLimitFailure.DENY:
            return Rejection(
                Code.RATE_LIMIT_UNAVAILABLE,
                "rate limit storage unreachable",
                headers=(("Retry-After", str(int(RETRY_STORAGE_AFTER))),),
            )
        if self.failure is RateLimitFailure.ALLOW:
            return None
        return self._answer(limits, self._hit_all(self._local, windows))

    def hit(
        self, endpoint: str, identity: str, limits: Sequence[RateLimitItem]
    ) -> Rejection | None:
        """Count one request; a rejection when a limit is exceeded (or the storage denies)."""
        return self.hit_and_claim(endpoint, identity, limits)[0]

    def hit_and_claim(
        self,
        endpoint: str,
        identity: str,
        limits: Sequence[RateLimitItem],
        claim: tuple[str, int, str] | None = None,
    ) -> tuple[Rejection | None, bool | None]:
        """``hit``, and on Redis the replay claim ``(key, ttl, token)`` in the same round trip.

        The claim is made only if every limit admits the request; its outcome is None when it
        was not made (refused, storage unreachable, counts in memory): the caller claims then.
        """
        return self.start_hit(endpoint, identity, limits, claim).result()

    def start_hit(
        self,
        endpoint: str,
        identity: str,
        limits: Sequence[RateLimitItem],
        claim: tuple[str, int, str] | None = None,
    ) -> PendingHit:
        """``hit_and_claim``, its answer left to be read: on Redis the command is sent and the
        caller may work until it calls ``result()``, which it must (the connection waits)."""
        if not limits:
            return _ADMITTED
        windows, plan = self._windows_of(endpoint, identity, limits)
        if self._script is None or plan is None:
            refusal = self._hit_all(self._limiter, windows)
            return (
                _ADMITTED if refusal is None else PendingHit((self._answer(limits, refusal), None))
            )
        domain, now = self._domain(endpoint), self._monotonic()
        if self._outages.down(domain, now) or not self._settled(domain, endpoint, now):
            return PendingHit((self._degraded(windows, limits), None))
        try:
            read = self._script.start(plan, claim)
        except self._errors as exc:
            self._lost(domain, endpoint, claim, now, exc)
            return PendingHit((self._degraded(windows, limits), None))

        def finish() -> tuple[Rejection | None, bool | None]:
            try:
                hit = RedisHit.answer(plan, read())
            except self._errors as exc:
                self._lost(domain, endpoint, claim, now, exc)
                return self._degraded(windows, limits), None
            if hit.refused is None:
                return None, hit.claimed
            refusal = _Refusal(windows[hit.refused].item, hit.reset_at)
            return self._rejection(limits, refusal), None

        # Through a cluster client the script ran at once: nothing is in flight.
        return PendingHit(finish=finish) if self._script.deferred else PendingHit(finish())

    def _lost(
        self,
        domain: int,
        endpoint: str,
        claim: tuple[str, int, str] | None,
        now: float,
        exc: Exception,
    ) -> None:
        """The command failed or its answer was lost: ``domain`` is down for a while, and a
        claim it may have stored is given back later."""
        if claim is not None:
            self._unconfirmed.add(domain, claim[0], claim[2], now + claim[1])
        self._mark_down(domain, endpoint, exc)

    def _settled(self, domain: int, endpoint: str, now: float) -> bool:
        """Claims whose answer was lost on ``domain`` given back before its next command
        (``UnconfirmedClaims``); False, the domain marked down, if Redis did not answer."""
        if self._unconfirmed.pending:
            try:
                self._unconfirmed.settle(domain, now)
            except self._errors as exc:
                self._mark_down(domain, endpoint, exc)
                return False
        return True

    def _hit_all(
        self, limiter: MovingWindowRateLimiter, windows: tuple[_Window, ...]
    ) -> _Refusal | None:
        # In memory. MovingWindowRateLimiter.hit is key_for() plus the storage's
        # acquire_entry(); the key is built once per caller (windows), so a hit is the storage
        # call alone; the first limit exceeded stops the count (as in the Redis script).
        storage = limiter.storage
        for window in windows:
            if not self._acquire(storage, window.key, window.item.amount, window.expiry):
                reset_at, _ = limiter.get_window_stats(window.item, *window.identifiers)
                return _Refusal(window.item, reset_at)
        return None

    def _answer(
        self, limits: Sequence[RateLimitItem], refusal: _Refusal | None
    ) -> Rejection | None:
        return None if refusal is None else self._rejection(limits, refusal)
