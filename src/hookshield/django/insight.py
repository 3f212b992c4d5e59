"""What the inventory says: flags computed from sightings and the current settings.

long-lived          lifetime above MAX_CERT_LIFETIME_DAYS
expiring-soon       expires within the window (--expiring-within), not expired yet
expired-but-seen    presented after its notAfter
shared              seen from several source networks, or accepted as different identities
                    (ALLOW entries) on different endpoints
stale-after-rotation  an older certificate of an identity still in use N days after a newer
                    one of the same identity first appeared
unknown             chains to a trust anchor but no endpoint's ALLOW admits it
refused-often       refused at least 10 times and in more than half of its sightings
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from hookshield.core.identity import ClientIdentity
from hookshield.django.conf import Settings

__all__ = ["Flag", "Row", "flag_rows", "load_rows"]


class Flag(StrEnum):
    LONG_LIVED = "long-lived"
    EXPIRING_SOON = "expiring-soon"
    EXPIRED_BUT_SEEN = "expired-but-seen"
    SHARED = "shared"
    STALE_AFTER_ROTATION = "stale-after-rotation"
    UNKNOWN = "unknown"
    REFUSED_OFTEN = "refused-often"


REFUSED_OFTEN_MIN = 10


@dataclass
class Row:
    """One certificate, its sightings summed up, and its flags."""

    fingerprint: str
    name: str
    spiffe_id: str
    dns_sans: list[str]
    uri_sans: list[str]
    common_names: list[str]
    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    first_seen: dt.datetime
    last_seen: dt.datetime
    networks: list[str]
    accepted: dict[str, int] = field(default_factory=dict)  # endpoint -> count
    refused: dict[str, int] = field(default_factory=dict)  # code -> count
    flags: list[Flag] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.accepted.values()) + sum(self.refused.values())

    def identity(self) -> ClientIdentity:
        return ClientIdentity(
            fingerprint=self.fingerprint,
            spiffe_id=self.spiffe_id or None,
            dns_sans=tuple(self.dns_sans),
            uri_sans=tuple(self.uri_sans),
            subject=self.subject,
            common_names=tuple(self.common_names),
            issuer=self.issuer,
            serial=int(self.serial, 16),
            not_before=self.not_before,
            not_after=self.not_after,
        )


def flag_rows(
    rows: Sequence[Row],
    conf: Settings,
    *,
    now: dt.datetime,
    expiring_within: dt.timedelta = dt.timedelta(days=14),
    stale_after: dt.timedelta = dt.timedelta(days=7),
) -> list[Row]:
    max_lifetime = (
        dt.timedelta(days=conf.max_cert_lifetime_days)
        if conf.max_cert_lifetime_days is not None
        else None
    )
    for row in rows:
        identity = row.identity()
        matches = {name: e.allow.match(identity) for name, e in conf.endpoints.items()}
        row.flags = [
            *_lifetime_flags(row, now, max_lifetime, expiring_within),
            *_usage_flags(row, matches),
        ]
    _stale(rows, stale_after)
    return list(rows)


def _lifetime_flags(
    row: Row, now: dt.datetime, max_lifetime: dt.timedelta | None, expiring_within: dt.timedelta
) -> list[Flag]:
    flags: list[Flag] = []
    if max_lifetime is not None and row.not_after - row.not_before > max_lifetime:
        flags.append(Flag.LONG_LIVED)
    if now <= row.not_after <= now + expiring_within:
        flags.append(Flag.EXPIRING_SOON)
    if row.last_seen > row.not_after:
        flags.append(Flag.EXPIRED_BUT_SEEN)
    return flags


def _usage_flags(row: Row, matches: Mapping[str, str | None]) -> list[Flag]:
    """``matches``: each endpoint's ALLOW match for the row's certificate (None: no match)."""
    flags: list[Flag] = []
    # Accepted as different identities on different endpoints: one certificate serving
    # services with different trust boundaries.
    as_identities = {matches.get(endpoint) for endpoint in row.accepted} - {None}
    if len(row.networks) > 1 or len(as_identities) > 1:
        flags.append(Flag.SHARED)
    if not any(matches.values()):
        flags.append(Flag.UNKNOWN)
    refused = sum(row.refused.values())
    if refused >= REFUSED_OFTEN_MIN and refused * 2 > row.total:
        flags.append(Flag.REFUSED_OFTEN)
    return flags


def _stale(rows: Iterable[Row], stale_after: dt.timedelta) -> None:
    by_name: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_name[row.name].append(row)
    for same in by_name.values():
        same.sort(key=lambda r: r.not_before)
        for older, newer in pairwise(same):
            if older.last_seen > newer.first_seen + stale_after:
                older.flags.append(Flag.STALE_AFTER_ROTATION)


def load_rows() -> list[Row]:
    """Every certificate in the inventory with its sightings summed up (not flagged yet)."""
    from hookshield.django.models import Certificate

    rows = []
    for cert in Certificate.objects.prefetch_related("sightings").order_by("name", "not_before"):
        row = Row(
            fingerprint=cert.fingerprint,
            name=cert.name,
            spiffe_id=cert.spiffe_id,
            dns_sans=list(cert.dns_sans),
            uri_sans=list(cert.uri_sans),
            common_names=list(cert.common_names),
            subject=cert.subject,
            issuer=cert.issuer,
            serial=cert.serial,
            not_before=cert.not_before,
            not_after=cert.not_after,
            first_seen=cert.first_seen,
            last_seen=cert.last_seen,
            networks=list(cert.networks),
        )
        for sighting in cert.sightings.all():
            if sighting.outcome == "accepted":
                row.accepted[sighting.endpoint] = (
                    row.accepted.get(sighting.endpoint, 0) + sighting.count
                )
            else:
                row.refused[sighting.code] = row.refused.get(sighting.code, 0) + sighting.count
        rows.append(row)
    return rows
