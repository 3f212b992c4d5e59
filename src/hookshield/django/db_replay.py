"""The replay store on the project's database (``REPLAY_STORAGE = "db://default"``, the default).

Every worker and host of a deployment shares its database, so this default holds with any
number of processes: the table's primary key lets exactly one INSERT of a delivery id win.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone

from hookshield.core.replay import StoreUnavailable
from hookshield.django.models import Delivery

__all__ = ["DatabaseReplayStore"]

logger = logging.getLogger("hookshield.replay")


class DatabaseReplayStore:
    """Claims are rows of ``hookshield_delivery``; expired rows are reused and swept."""

    networked = True  # a database round trip: async views leave the event loop for it
    SWEEP_INTERVAL = 60.0

    def __init__(self, alias: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.alias = alias
        self._deliveries = Delivery.objects.using(alias)
        self._monotonic = monotonic
        self._next_sweep = monotonic() + self.SWEEP_INTERVAL

    def claim(self, key: str, ttl_s: int) -> bool:
        now = timezone.now()
        expires = now + dt.timedelta(seconds=ttl_s)
        try:
            # Held, or expired and not swept yet: only an expired claim may be taken over, and
            # the UPDATE's condition makes one taker win. Should a sweep delete the row between
            # the two statements, the INSERT is tried once more rather than answering "replay".
            first = (
                self._insert(key, expires)
                or self._take_over(key, now, expires)
                or self._insert(key, expires)
            )
        except DatabaseError as exc:
            raise StoreUnavailable(f"database {self.alias!r}: {type(exc).__name__}") from exc
        self._sweep(now)
        return first

    def release(self, key: str) -> None:
        try:
            with self._statement():
                self._deliveries.filter(key=key).delete()
        except DatabaseError as exc:
            raise StoreUnavailable(f"database {self.alias!r}: {type(exc).__name__}") from exc

    def _insert(self, key: str, expires: dt.datetime) -> bool:
        try:
            with self._statement():
                self._deliveries.create(key=key, expires_at=expires)
        except IntegrityError:
            return False
        return True

    def _take_over(self, key: str, now: dt.datetime, expires: dt.datetime) -> bool:
        with self._statement():
            taken = self._deliveries.filter(key=key, expires_at__lte=now)
            return taken.update(expires_at=expires) == 1

    def _statement(self) -> AbstractContextManager[object]:
        """A savepoint when the request is in a transaction (``ATOMIC_REQUESTS``), so that a
        failed statement rolls back only itself, not the view's work; otherwise nothing
        (autocommit: one statement, one round trip)."""
        if connections[self.alias].in_atomic_block:
            return transaction.atomic(using=self.alias)
        return nullcontext()

    def _sweep(self, now: dt.datetime) -> None:
        """Delete expired claims, at most once a minute per process, so the table stays small."""
        if self._monotonic() < self._next_sweep:
            return
        self._next_sweep = self._monotonic() + self.SWEEP_INTERVAL
        try:
            with self._statement():
                self._deliveries.filter(expires_at__lt=now).delete()
        except DatabaseError:
            logger.warning("replay store: expired delivery ids could not be swept; retried later")
