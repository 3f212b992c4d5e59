"""The replay store on the project's database (``REPLAY_STORAGE = "db://default"``, the default).

Every worker and host of a deployment shares its database, so this default holds with any
number of processes: the table's primary key lets exactly one INSERT of a delivery id win.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from django.db import Error, IntegrityError, connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from hookshield.core.replay import StoreUnavailable, claim_token
from hookshield.django.models import Delivery

__all__ = ["DatabaseReplayStore"]

logger = logging.getLogger("hookshield.replay")

UNCONFIRMED_KEPT = 1024
SETTLED_PER_STATEMENT = 100  # conditions OR'd in one DELETE (SQLite's expression depth: 1000)


class DatabaseReplayStore:
    """Claims are rows of ``hookshield_delivery``; expired rows are reused and swept."""

    networked = True  # a database round trip: async views leave the event loop for it
    SWEEP_INTERVAL = 60.0

    def __init__(self, alias: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.alias = alias
        self._deliveries = Delivery.objects.using(alias)
        self._monotonic = monotonic
        self._next_sweep = monotonic() + self.SWEEP_INTERVAL
        # (key, token) of claims whose statement failed in autocommit: when each expires
        self._unconfirmed: dict[tuple[str, str], dt.datetime] = {}
        self._lock = threading.Lock()

    def claim(self, key: str, ttl_s: int, token: str | None = None) -> bool:
        now = timezone.now()
        expires = now + dt.timedelta(seconds=ttl_s)
        # In a transaction (ATOMIC_REQUESTS) a claim commits with the request or not at all;
        # in autocommit a statement that failed may have been committed, its answer lost.
        autocommit = not self._in_transaction()
        if autocommit and self._unconfirmed:
            self._settle(now)
        token = token or claim_token()
        try:
            # Held, or expired and not swept yet: only an expired claim may be taken over, and
            # the UPDATE's condition makes one taker win. Should a sweep delete the row between
            # the two statements, the INSERT is tried once more rather than answering "replay".
            first = (
                self._insert(key, expires, token)
                or self._take_over(key, now, expires, token)
                or self._insert(key, expires, token)
            )
        except Error as exc:  # InterfaceError too (a closed connection), not a DatabaseError
            if autocommit:
                self._unconfirm(key, token, expires)
            raise StoreUnavailable(f"database {self.alias!r}: {type(exc).__name__}") from exc
        self._sweep(now)
        return first

    def _unconfirm(self, key: str, token: str, expires: dt.datetime) -> None:
        """A claim nobody was told about would refuse every retry of its delivery as a replay
        until it expires: the next claim in autocommit gives it back (``_settle``)."""
        with self._lock:
            if len(self._unconfirmed) < UNCONFIRMED_KEPT:
                self._unconfirmed[(key, token)] = expires
                return
        logger.warning("replay store: %d unconfirmed claims kept, one more not", UNCONFIRMED_KEPT)

    def _settle(self, now: dt.datetime) -> None:
        """Delete each unconfirmed claim while it holds its own token, a few per statement.
        Best effort: on a database error the rest are kept for the next claim, which goes on."""
        with self._lock:
            claims, self._unconfirmed = self._unconfirmed, {}
        alive = [(claim, ends) for claim, ends in claims.items() if ends > now]
        for start in range(0, len(alive), SETTLED_PER_STATEMENT):
            batch = alive[start : start + SETTLED_PER_STATEMENT]
            mine = functools.reduce(operator.or_, (Q(key=k, token=t) for (k, t), _ in batch))
            try:
                _delete(self._deliveries.filter(mine))
            except Error as exc:  # InterfaceError too (a closed connection), not a DatabaseError
                kept = alive[start:]
                logger.warning(
                    "replay store: %d unconfirmed claim(s) not given back yet (%s)",
                    len(kept),
                    type(exc).__name__,
                )
                with self._lock:  # beside those added meanwhile
                    self._unconfirmed.update(kept)
                return

    def release(self, key: str, token: str | None = None, ttl_s: int = 0) -> None:
        rows = self._deliveries.filter(key=key)
        autocommit = not self._in_transaction()
        try:
            with self._statement():
                _delete(rows if token is None else rows.filter(token=token))
        except Error as exc:  # as in claim
            # In autocommit, given back by the next claim; in a transaction, the claim goes or
            # stays with the request's commit.
            if autocommit and token is not None and ttl_s > 0:
                self._unconfirm(key, token, timezone.now() + dt.timedelta(seconds=ttl_s))
            raise StoreUnavailable(f"database {self.alias!r}: {type(exc).__name__}") from exc

    def _insert(self, key: str, expires: dt.datetime, token: str) -> bool:
        try:
            with self._statement():
                self._deliveries.create(key=key, expires_at=expires, token=token)
        except IntegrityError:
            return False
        return True

    def _take_over(self, key: str, now: dt.datetime, expires: dt.datetime, token: str) -> bool:
        with self._statement():
            taken = self._deliveries.filter(key=key, expires_at__lte=now)
            return taken.update(expires_at=expires, token=token) == 1

    def _statement(self) -> AbstractContextManager[object]:
        """A savepoint when the request is in a transaction (``ATOMIC_REQUESTS``), so that a
        failed statement rolls back only itself, not the view's work; otherwise nothing
        (autocommit: one statement, one round trip)."""
        if self._in_transaction():
            return transaction.atomic(using=self.alias)
        return nullcontext()

    def _in_transaction(self) -> bool:
        return bool(connections[self.alias].in_atomic_block)

    def _sweep(self, now: dt.datetime) -> None:
        """Delete expired claims, at most once a minute per process, so the table stays small."""
        if self._monotonic() < self._next_sweep:
            return
        self._next_sweep = self._monotonic() + self.SWEEP_INTERVAL
        try:
            with self._statement():
                _delete(self._deliveries.filter(expires_at__lt=now))
        except Error:  # as in claim; the claim made stands
            logger.warning("replay store: expired delivery ids could not be swept; retried later")


def _delete(rows: QuerySet[Delivery]) -> int:
    """Delete ``rows`` in one statement that carries their condition.

    ``QuerySet.delete()`` does so only while no receiver of Django's delete signals exists;
    with one (a project-wide receiver counts), it selects the rows, then deletes them by primary
    key alone. A claim that takes a row over between the two (an expired one, for the sweep; a
    given-back one's successor, for ``_settle``) would be deleted with it, and its delivery
    accepted again. ``_raw_delete`` is the statement Django's own fast path runs; these rows
    send no signal and nothing cascades from them.
    """
    return int(rows._raw_delete(rows.db))
