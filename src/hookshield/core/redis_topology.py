"""The Redis deployment rate limits and replay claims share: one node, Sentinel or Cluster.

Both are opened through ``limits``' storages (``storage_from_string``), so one URI means the same
thing in ``RATE_LIMIT_STORAGE`` and ``REPLAY_STORAGE``, and when both name the same URI they use
one client and one connection pool. Every key carries its endpoint as a hash tag, so on a
cluster an endpoint's rate and replay keys live in one slot: that slot is also what fails
together (``fault_domain``), so a dead master takes out only the endpoints whose slots it serves.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import logging
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.errors import StorageError
from limits.storage import RedisClusterStorage, RedisStorage, storage_from_string

from hookshield.core.errors import ConfigurationError
from hookshield.core.extras import redis_client
from hookshield.core.redact import without_credentials

__all__ = [
    "GIVE_BACK",
    "KEY_PREFIX",
    "REDIS_SCHEMES",
    "RETRY_AFTER",
    "STORAGE_TIMEOUT",
    "WHOLE",
    "KeyedScript",
    "Outages",
    "UnconfirmedClaims",
    "direct_pool",
    "fault_domain",
    "keyed_script",
    "open_storage",
    "outages",
    "storage_errors",
    "unconfirmed_claims",
]

logger = logging.getLogger("hookshield.replay")

REDIS_SCHEMES = (
    "redis",
    "rediss",
    "redis+unix",
    "redis+cluster",
    "redis+sentinel",
    "valkey",
    "valkeys",
    "valkey+unix",
    "valkey+cluster",
    "valkey+sentinel",
)
# Redis answers on loopback or a LAN in well under a millisecond; a storage slower than this is
# treated as unreachable rather than allowed to hold webhook workers.
STORAGE_TIMEOUT = 0.5
KEY_PREFIX = "hookshield"
CLUSTER_RETRIES = 1
WHOLE = -1  # the fault domain of a storage that is not a cluster: all of it
# A fault domain that failed is left alone for this long, so a dead or silent node costs one
# timeout per interval and process, not one per request.
RETRY_AFTER = 5.0


def open_storage(uri: str, where: str) -> RedisStorage:
    """limits' storage for ``uri`` (any scheme of ``REDIS_SCHEMES``; ``unix://`` as redis-py's).

    Raises ``ConfigurationError`` naming ``where`` for a URI limits refuses or, for a cluster,
    one whose nodes cannot be reached now (its client maps the slots when it is created).
    """
    redis_client(where)  # limits' Redis storages need the client; name the extra if it is missing
    scheme = urlparse(uri).scheme
    timeouts = {"socket_timeout": STORAGE_TIMEOUT, "socket_connect_timeout": STORAGE_TIMEOUT}
    options: dict[str, Any] = {**timeouts, "key_prefix": KEY_PREFIX}
    if scheme.endswith("+sentinel"):
        # redis-py gives the sentinels' own clients no timeout and ten retries with backoff
        # unless told (seconds per request with no sentinel up): asking each sentinel once is
        # the retry.
        options["sentinel_kwargs"] = {**timeouts, "retry": _retry(uri, 0)}
    if scheme.endswith("+cluster"):
        # A node that fails is retried after the slot map is read again: once finds the
        # replica that took over; redis-py's ten retries would hold the worker for ten timeouts.
        options["retry"] = _retry(uri, CLUSTER_RETRIES)
    target = "redis+unix" + uri.removeprefix("unix") if scheme == "unix" else uri
    try:
        storage = storage_from_string(target, wrap_exceptions=True, **options)
    except LimitsConfigurationError as exc:
        raise ConfigurationError(f"{where} = {without_credentials(uri)!r}: {exc}") from exc
    except Exception as exc:  # the cluster client's first slot map (RedisClusterException...)
        raise ConfigurationError(
            f"{where} = {without_credentials(uri)!r} cannot be reached: {type(exc).__name__}"
        ) from exc
    if not isinstance(storage, RedisStorage):
        raise ConfigurationError(f"{where} = {without_credentials(uri)!r} is not a Redis URI")
    return storage


def storage_errors(storage: RedisStorage) -> tuple[type[Exception], ...]:
    """Everything a call on the storage's client raises when the deployment cannot answer.

    The cluster client's own errors (``RedisClusterException``: no node serves the slot,
    the slot map cannot be refreshed) derive from ``Exception``, not ``RedisError``, so limits
    does not wrap them.
    """
    base = storage.base_exceptions
    errors = base if isinstance(base, tuple) else (base,)
    module = _exceptions(storage)
    cluster = [
        getattr(module, name)
        for name in ("RedisClusterException", "ValkeyClusterException")
        if isinstance(getattr(module, name, None), type)
    ]
    return (StorageError, OSError, *errors, *cluster)


def _exceptions(storage: RedisStorage) -> Any:
    """The exceptions module of the storage's client library (redis or valkey)."""
    return importlib.import_module(f"{storage.target_server}.exceptions")


def fault_domain(storage: RedisStorage, key: str) -> int:
    """What fails together with ``key`` (or the keys whose hash tag it is): its cluster slot,
    else the whole storage.

    A slot rather than the node serving it: the slot map changes during a failover, the slot
    of a key never does.
    """
    return _slot(_hash_tag(key)) if isinstance(storage, RedisClusterStorage) else WHOLE


def _hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the text inside the first ``{...}``, if not empty."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else key


@functools.lru_cache(maxsize=4096)
def _slot(tag: str) -> int:
    from redis.crc import key_slot  # the CRC16 slot; valkey's is the same function

    return int(key_slot(tag.encode()))


class Outages:
    """When each fault domain of one storage may be asked again, for all that use it (the rate
    limiter and the replay store on one client learn of a failure from each other)."""

    def __init__(self) -> None:
        self._until: dict[int, float] = {}

    def down(self, domain: int, now: float) -> bool:
        return now < self._until.get(domain, -math.inf)

    def mark(self, domain: int, now: float) -> None:
        self._until[domain] = now + RETRY_AFTER


_outages: weakref.WeakKeyDictionary[RedisStorage, Outages] = weakref.WeakKeyDictionary()


def outages(storage: RedisStorage) -> Outages:
    return _outages.setdefault(storage, Outages())


class KeyedScript:
    """A Lua script sent by its digest (``EVALSHA``), or by its source (``EVAL``, which caches
    it there) to a node that lacks it, as one after a restart or a promoted replica does.

    redis-py's ``Script`` would ``SCRIPT LOAD`` it instead, which a cluster client sends to
    every master: one unreachable master would fail the slots of all the others.

    On one node or a Sentinel group's master, the command goes straight to a connection of the
    client's pool: the pool checks it out as it does for the client (its process; a connection
    Redis closed is made again), and a connection whose answer did not arrive whole (a timeout,
    a dropped connection) is closed, so that an answer arriving late is never read as the next
    command's (redis-py's Sentinel-managed connections do not close themselves, and its pool's
    check for a connection holding data is off under RESP3). What is left out is the client's
    per-command wrapping: its retry loop (hookshield's clients retry nothing there by default;
    a retry option in the URI does not re-send these scripts, whose counts must not run twice)
    and its observability hooks, 8-10 µs of CPU per command (see BENCHMARKS.md). A cluster
    client routes each command to its slot's node, and is called as such.
    """

    def __init__(self, client: Any, source: str, exceptions: Any) -> None:
        """``exceptions``: the exceptions module of the client's library (redis or valkey)."""
        self._client = client
        self._source = source.encode()
        self._sha = hashlib.sha1(self._source, usedforsecurity=False).hexdigest()
        self._no_script = exceptions.NoScriptError
        self._answered = exceptions.ResponseError  # a whole reply: the connection is sound
        self._pool = direct_pool(client)

    def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return self.start(keys, args)()

    def start(self, keys: Sequence[str], args: Sequence[Any]) -> Callable[[], Any]:
        """Send the script now and return what reads its answer, so that the caller can work
        while Redis runs it. The reader must be called (it gives the connection back), once;
        it raises what the client raises. Through a cluster client the script runs at once and
        the reader hands back its answer."""
        pool = self._pool
        if pool is None:
            return functools.partial(_identity, self._called(keys, args))
        connection = pool.get_connection()
        try:
            connection.send_command("EVALSHA", self._sha, len(keys), *keys, *args)
        except BaseException:
            connection.disconnect()  # part of a command may have gone out
            pool.release(connection)
            raise

        def answer() -> Any:
            try:
                try:
                    return connection.read_response()
                except self._no_script:  # a whole reply: the same connection serves
                    connection.send_command("EVAL", self._source, len(keys), *keys, *args)
                    return connection.read_response()
            except self._answered:
                raise
            except BaseException:
                connection.disconnect()  # a timeout or a drop leaves it mid-reply
                raise
            finally:
                pool.release(connection)

        return answer

    def _called(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return self._client.evalsha(self._sha, len(keys), *keys, *args)
        except self._no_script:
            return self._client.eval(self._source, len(keys), *keys, *args)


def _identity(answer: Any) -> Any:
    return answer


def direct_pool(client: Any) -> Any:
    """The connection pool ``KeyedScript`` sends on directly, or None to call the client: a
    cluster client (no pool of its own), a client holding one connection, or an older client
    library whose pool wants the command's name (redis-py 5, valkey-py 6)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or getattr(client, "connection", None) is not None:
        return None
    try:
        inspect.signature(pool.get_connection).bind()
    except (TypeError, ValueError):
        return None
    return pool


def keyed_script(storage: RedisStorage, source: str) -> KeyedScript:
    """``source`` on the client of limits' ``storage`` (redis-py's or valkey's)."""
    return KeyedScript(storage.get_connection(), source, _exceptions(storage))


# Deletes each claim KEYS[i] only while it holds its token ARGV[i]; the keys share a slot.
GIVE_BACK = """
local given = 0
for i = 1, #KEYS do
    if redis.call('get', KEYS[i]) == ARGV[i] then
        given = given + redis.call('del', KEYS[i])
    end
end
return given
"""


class UnconfirmedClaims:
    """Replay claims whose answer never came (a timeout, a dropped connection, a master that
    died), on one storage: Redis may have stored them. A claim nobody was told about would
    refuse the sender's retry as a replay until it expires, and the delivery would be accepted
    zero times; so the claims of a fault domain are given back (each deleted while it holds its
    own token, one command for all) before the next claim on that domain. One that never
    reached Redis finds nothing to delete; one whose TTL has passed is forgotten.
    """

    KEPT = 1024  # an outage stops commands to its domain after the first failure: few come

    def __init__(self, storage: RedisStorage | None = None) -> None:
        # fault domain: {(key, token): when the claim expires, on the caller's monotonic clock}
        self.pending: dict[int, dict[tuple[str, str], float]] = {}
        self._give_back = keyed_script(storage, GIVE_BACK) if storage is not None else None
        self._refused: tuple[type[Exception], ...] = ()
        self._for_now: tuple[type[Exception], ...] = ()
        if storage is not None:
            module = _exceptions(storage)
            # Redis answered with an error: it would answer so again (permissions, scripting
            # disabled, a wrong type)...
            self._refused = (module.ResponseError,)
            # ...except these, which a failover or a busy node answers for a while.
            self._for_now = tuple(
                getattr(module, name)
                for name in ("ReadOnlyError", "ClusterDownError", "TryAgainError")
                if isinstance(getattr(module, name, None), type)
            )

    def add(self, domain: int, key: str, token: str, expires: float) -> None:
        if sum(map(len, self.pending.values())) >= self.KEPT:
            logger.warning("unconfirmed replay claims: %d kept, one more not given back", self.KEPT)
            return
        self.pending.setdefault(domain, {})[(key, token)] = expires

    def settle(self, domain: int, now: float) -> None:
        """Give back the domain's claims; raises what the client raises (they are kept then),
        except an error Redis would answer again (permissions, scripting disabled), which is
        logged, and the claims dropped. A failover's errors (READONLY, CLUSTERDOWN, TRYAGAIN)
        keep them, as an unreachable node does."""
        claims = {claim: ends for claim, ends in self.pending.pop(domain, {}).items() if ends > now}
        if not claims or self._give_back is None:
            return
        try:
            self._give_back([key for key, _ in claims], [token for _, token in claims])
        except self._for_now:
            self.pending.setdefault(domain, {}).update(claims)  # asked again next time
            raise
        except self._refused as exc:
            logger.warning(
                "could not give back %d unconfirmed replay claim(s) (%s): their deliveries' "
                "retries are refused as replays until the claims expire",
                len(claims),
                type(exc).__name__,
            )
        except BaseException:
            self.pending.setdefault(domain, {}).update(claims)  # asked again next time
            raise


_unconfirmed: weakref.WeakKeyDictionary[RedisStorage, UnconfirmedClaims]
_unconfirmed = weakref.WeakKeyDictionary()


def unconfirmed_claims(storage: RedisStorage) -> UnconfirmedClaims:
    """The storage's unconfirmed claims, shared by the limiter and the replay store on it."""
    known = _unconfirmed.get(storage)
    if known is None:
        known = _unconfirmed[storage] = UnconfirmedClaims(storage)
    return known


def _retry(uri: str, retries: int) -> Any:
    """The client library's ``Retry``: ``retries`` more attempts, at once."""
    name = "valkey" if uri.startswith("valkey") else "redis"
    retry = importlib.import_module(f"{name}.retry")
    backoff = importlib.import_module(f"{name}.backoff")
    return retry.Retry(backoff.NoBackoff(), retries)
