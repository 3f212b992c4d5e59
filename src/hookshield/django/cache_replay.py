"""The replay store on a Django cache alias (``REPLAY_STORAGE = "default"``)."""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache

from hookshield.core.replay import StoreUnavailable

__all__ = ["CacheReplayStore"]


class CacheReplayStore:
    """``cache.add`` is set-if-absent: atomic on Redis, Memcached and database caches.

    LocMemCache holds within one process only and DummyCache stores nothing; the system checks
    say so (``hookshield.W004``, ``hookshield.E010``).
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._cache: BaseCache = caches[alias]
        self.networked = not isinstance(self._cache, LocMemCache)

    def claim(self, key: str, ttl_s: int, token: str | None = None) -> bool:
        try:
            return bool(self._cache.add(key, 1, timeout=ttl_s))
        except Exception as exc:  # cache backends raise their client's own errors
            raise StoreUnavailable(f"cache {self.alias!r}: {type(exc).__name__}") from exc

    def release(self, key: str, token: str | None = None, ttl_s: int = 0) -> None:
        # Django's cache API has no delete-if-equal: the key goes whatever claim holds it (one
        # made since the released one expired too), and a failed release is not tried again.
        try:
            self._cache.delete(key)
        except Exception as exc:  # as above
            raise StoreUnavailable(f"cache {self.alias!r}: {type(exc).__name__}") from exc
