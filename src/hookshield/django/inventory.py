"""Recording certificate sightings without slowing the guard down.

The request path only counts in process memory (a dict increment under a lock). Once per
interval a background thread of each process adds its counts to counters in the Django cache,
then claims that interval's gate for each (certificate, endpoint) it counted (``cache.add``,
atomic on shared caches). The process that gets a gate drains the pair's cache counters, those
of every process, into the database in one transaction. So the database sees at most one write
per certificate and endpoint per interval across all processes sharing the cache, and a request
never waits on the cache or the database. A failed write leaves the counts in the cache for the
next gate; a cache outage keeps them in the process. A process that stops pushes what it holds
on the way out (atexit).
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import functools
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import caches
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models import F

from hookshield.core.certs import parse_certificates
from hookshield.core.errors import CertificateParseError, Code
from hookshield.core.identity import ClientIdentity
from hookshield.core.pipeline import Decision, Webhook
from hookshield.core.verify import Verifier

__all__ = ["InventoryRecorder", "client_network"]

logger = logging.getLogger("hookshield.inventory")

INTERVAL = 60.0
MAX_NETWORKS = 64
# The counters between processes live in this cache (system checks E011 and W006 look at it).
CACHE_ALIAS = "default"
MAX_PENDING_CERTIFICATES = 10_000  # per interval; beyond, new certificates wait (hostile floods)
KEEP = 7 * 24 * 3600  # cache lifetime of counters no process drained (seconds)
ACCEPTED = "accepted"
# Refusals that come after the path to an anchor was built (so the certificate is one of ours),
# and those that come before it (checked once per certificate and interval).
_REFUSED_ON_THE_PATH = frozenset(
    str(code)
    for code in (
        Code.CLIENT_CERT_REVOKED,
        Code.CLIENT_CERT_REVOCATION_UNKNOWN,
        Code.CLIENT_CERT_TOO_LONG_LIVED,
    )
)
_REFUSED_BEFORE_THE_PATH = frozenset(
    str(code) for code in (Code.CLIENT_CERT_EXPIRED, Code.CLIENT_CERT_NOT_YET_VALID)
)
# Every counter a (certificate, endpoint) pair can have: accepted, or refused with a code.
OUTCOMES = (ACCEPTED, *(str(code) for code in Code))


def client_network(decision: Decision, forwarded: bool) -> str:
    """The source network: the proxy's X-Forwarded-For for proxied requests, else the peer.

    Only called for decisions with a certificate: with a forwarding source, the guard took it
    from the headers, so the peer is a trusted proxy and its X-Forwarded-For is believed.
    """
    address = decision.inbound.peer
    if forwarded:
        forwarded_for = str(decision.inbound.meta.get("HTTP_X_FORWARDED_FOR") or "")
        if forwarded_for:
            address = forwarded_for.rpartition(",")[2].strip()  # the hop the nearest proxy added
    return _network(address)


@functools.lru_cache(maxsize=4096)  # clients are few; parsing an address costs microseconds
def _network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(slots=True)
class _Pending:
    """What one process saw of one certificate since its last push to the cache."""

    identity: ClientIdentity
    networks: set[str] = field(default_factory=set)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (endpoint, outcome)
    first: float = 0.0
    last: float = 0.0


def _key(fingerprint: str, *parts: str) -> str:
    return ":".join(("hookshield:inventory", fingerprint, *parts))


class InventoryRecorder:
    """A decision observer: counts in memory; a background thread moves the counts on."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        forwarded: bool,
        interval: float = INTERVAL,
    ) -> None:
        self._verifier = verifier
        self._forwarded = forwarded
        self._interval = interval
        self.clock: Callable[[], float] = time.time
        self.background = True  # False: nothing moves until tick() is called (tests)
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._owed: set[tuple[str, str]] = set()  # pairs pushed, not yet drained by us
        self._strangers: set[str] = set()  # fingerprints not admitted this interval
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # -- the request path ----------------------------------------------------------------------

    def __call__(self, decision: Decision) -> None:
        chain = decision.chain
        if chain is None:
            return  # no certificate: nothing to inventory
        fingerprint = chain.digests[0].hex()
        outcome = ACCEPTED if isinstance(decision.result, Webhook) else str(decision.result.code)
        now = self.clock()
        network = client_network(decision, self._forwarded)
        row = (decision.endpoint, outcome)
        with self._lock:
            pending = self._pending.get(fingerprint)
            if pending is not None:
                _count(pending, network, row, now)
                return
            if fingerprint in self._strangers:
                return
        pending = self._admit(fingerprint, decision, outcome, now)
        if pending is not None:
            with self._lock:
                _count(pending, network, row, now)
            if self.background and self._worker is None:
                self._start()

    def _admit(
        self, fingerprint: str, decision: Decision, outcome: str, now: float
    ) -> _Pending | None:
        """A first sighting this interval: only certificates our trust anchors issued count.

        Anyone can mint a certificate; recording those would let any client fill the tables.
        They stay in the decision log and the metrics.
        """
        chain = decision.chain
        assert chain is not None
        identity = decision.identity
        if identity is None and (
            outcome in _REFUSED_ON_THE_PATH
            or (outcome in _REFUSED_BEFORE_THE_PATH and self._verifier.issued_by_anchor(chain))
        ):
            identity = _identity_of(chain.ders[0])
        with self._lock:
            if identity is None:
                if len(self._strangers) < MAX_PENDING_CERTIFICATES:
                    self._strangers.add(fingerprint)
                return None
            if len(self._pending) >= MAX_PENDING_CERTIFICATES:
                return None
            return self._pending.setdefault(fingerprint, _Pending(identity, first=now))

    def _start(self) -> None:
        with self._lock:
            if self._worker is not None:
                return
            self._worker = threading.Thread(
                target=self._run, name="hookshield-inventory", daemon=True
            )
        self._worker.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._tick_safely()

    def _tick_safely(self) -> None:
        try:
            self.tick()
        except Exception:  # the worker must outlive any one failure
            logger.exception("inventory update failed")
        finally:
            close_old_connections()

    def close(self) -> None:
        """Stop the worker and hand over what this process holds."""
        self._stop.set()
        self._tick_safely()

    # -- moving the counts on ------------------------------------------------------------------

    def tick(self) -> int:
        """Push this process's counts to the cache, then drain the pairs whose gate we get.

        Returns the number of sighting rows written to the database.
        """
        with self._lock:
            taken, self._pending = self._pending, {}
            self._strangers = set()
        cache = caches[CACHE_ALIAS]
        for fingerprint, pending in taken.items():
            try:
                _push(cache, fingerprint, pending, self._owed)
            except Exception:
                logger.warning("inventory: cache %r unavailable; counts kept", CACHE_ALIAS)
                self._keep(fingerprint, pending)
        bucket = int(self.clock() // self._interval)
        written = 0
        for fingerprint, endpoint in sorted(self._owed):
            gate = _key(fingerprint, endpoint, "gate", str(bucket))
            try:
                if not cache.add(gate, 1, max(1, int(self._interval * 2))):
                    continue  # another process writes this pair this interval
                written += _drain(cache, fingerprint, endpoint)
            except DatabaseError:
                logger.exception("inventory write failed; the counts stay for the next one")
                continue
            except Exception:  # the cache, mostly: the counts stay where they are
                logger.exception("inventory update failed; the counts stay for the next one")
                continue
            self._owed.discard((fingerprint, endpoint))
        return written

    def _keep(self, fingerprint: str, pending: _Pending) -> None:
        """Put counts that could not be pushed back, merged with what came in meanwhile."""
        with self._lock:
            current = self._pending.setdefault(fingerprint, pending)
            if current is pending:
                return
            current.networks |= pending.networks
            current.first = min(current.first, pending.first)
            current.last = max(current.last, pending.last)
            for row, count in pending.counts.items():
                current.counts[row] = current.counts.get(row, 0) + count


def _count(pending: _Pending, network: str, row: tuple[str, str], now: float) -> None:
    if len(pending.networks) < MAX_NETWORKS:
        pending.networks.add(network)
    pending.counts[row] = pending.counts.get(row, 0) + 1
    pending.last = now


def _push(cache: Any, fingerprint: str, pending: _Pending, owed: set[tuple[str, str]]) -> None:
    """Add one certificate's counts to the shared counters, noting the pairs touched in owed."""
    meta_key = _key(fingerprint, "meta")
    meta = cache.get(meta_key) or _meta(pending.identity)
    meta["networks"] = sorted(set(meta.get("networks", ())) | pending.networks)[:MAX_NETWORKS]
    cache.set(meta_key, meta, KEEP)  # last writer wins; each push heals a lost update
    while pending.counts:
        (endpoint, outcome), count = next(iter(pending.counts.items()))
        counter = _key(fingerprint, endpoint, outcome)
        first, last = cache.get(f"{counter}:times") or (pending.first, pending.last)
        cache.set(f"{counter}:times", (min(first, pending.first), max(last, pending.last)), KEEP)
        if not cache.add(counter, count, KEEP):
            try:
                cache.incr(counter, count)
            except ValueError:  # expired between add and incr
                cache.set(counter, count, KEEP)
        del pending.counts[(endpoint, outcome)]  # counted: never pushed twice
        owed.add((fingerprint, endpoint))


def _drain(cache: Any, fingerprint: str, endpoint: str) -> int:
    """Write the pair's counters to the database and take what was written off them."""
    counters = {_key(fingerprint, endpoint, outcome): outcome for outcome in OUTCOMES}
    counts = {counters[key]: int(value) for key, value in cache.get_many(counters).items() if value}
    meta = cache.get(_key(fingerprint, "meta"))
    if not counts or meta is None:
        return 0
    now = time.time()
    times = cache.get_many([f"{key}:times" for key in counters if counters[key] in counts])
    rows = {}
    for outcome, count in counts.items():
        first, last = times.get(f"{_key(fingerprint, endpoint, outcome)}:times", (now, now))
        rows[outcome] = (count, _when(first), _when(last))
    _write(fingerprint, endpoint, meta, rows)
    for outcome, count in counts.items():
        cache.decr(_key(fingerprint, endpoint, outcome), count)  # keeps what came in meanwhile
    return len(rows)


def _identity_of(der: bytes) -> ClientIdentity | None:
    try:
        (cert,) = parse_certificates([der])
    except CertificateParseError:
        return None
    return ClientIdentity.from_certificate(cert, der)


def _meta(identity: ClientIdentity) -> dict[str, Any]:
    meta = dataclasses.asdict(identity)
    meta["name"] = identity.name
    return meta


def _when(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _write(
    fingerprint: str,
    endpoint: str,
    meta: dict[str, Any],
    rows: dict[str, tuple[int, dt.datetime, dt.datetime]],  # outcome -> count, first, last
) -> None:
    from hookshield.django.models import Certificate, Sighting

    networks: list[str] = list(meta.get("networks", ()))
    first = min(row[1] for row in rows.values())
    last = max(row[2] for row in rows.values())
    defaults: dict[str, Any] = {
        "name": meta["name"][:2048],
        "spiffe_id": meta["spiffe_id"] or "",
        "dns_sans": list(meta["dns_sans"]),
        "uri_sans": list(meta["uri_sans"]),
        "common_names": list(meta["common_names"]),
        "subject": meta["subject"],
        "issuer": meta["issuer"],
        "serial": f"{meta['serial']:x}",
        "not_before": meta["not_before"],
        "not_after": meta["not_after"],
        "networks": sorted(networks),
        "first_seen": first,
        "last_seen": last,
    }
    for attempt in range(2):
        try:
            with transaction.atomic():
                cert, created = Certificate.objects.select_for_update().get_or_create(
                    fingerprint=fingerprint, defaults=defaults
                )
                if not created:
                    cert.last_seen = max(cert.last_seen, last)
                    cert.first_seen = min(cert.first_seen, first)
                    cert.networks = sorted(set(cert.networks) | set(networks))[:MAX_NETWORKS]
                    cert.save(update_fields=["last_seen", "first_seen", "networks"])
                for outcome, (count, row_first, row_last) in rows.items():
                    refused = outcome != ACCEPTED
                    state, code = ("refused", outcome) if refused else (ACCEPTED, "")
                    updated = Sighting.objects.filter(
                        certificate=cert, endpoint=endpoint, outcome=state, code=code
                    ).update(count=F("count") + count, last_seen=row_last)
                    if not updated:
                        Sighting.objects.create(
                            certificate=cert,
                            endpoint=endpoint,
                            outcome=state,
                            code=code,
                            count=count,
                            first_seen=row_first,
                            last_seen=row_last,
                        )
            return
        except IntegrityError:
            if attempt:  # another process created the same rows at the same moment: retry once
                raise
