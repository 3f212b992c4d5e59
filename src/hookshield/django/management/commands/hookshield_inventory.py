"""``manage.py hookshield_inventory``: which certificates call which webhooks, and what is wrong."""

from __future__ import annotations

import datetime as dt
import json
import re
from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hookshield.django.conf import get_settings
from hookshield.django.insight import Flag, Row, flag_rows, load_rows

_DURATION = re.compile(r"(\d+)([dhm]?)")
_UNITS = {"d": "days", "": "days", "h": "hours", "m": "minutes"}


def duration(text: str) -> dt.timedelta:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ArgumentTypeError(f"{text!r} is not a duration like 14d, 12h or 30m")
    return dt.timedelta(**{_UNITS[match[2]]: int(match[1])})


def flags(text: str) -> set[Flag]:
    try:
        return {Flag(part.strip()) for part in text.split(",") if part.strip()}
    except ValueError as exc:
        raise ArgumentTypeError(f"{exc}; flags: {', '.join(f.value for f in Flag)}") from exc


class Command(BaseCommand):
    help = (
        "List the certificates the guard has seen, the webhooks they called and their flags: "
        + ", ".join(f.value for f in Flag)
        + "."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--format", choices=("table", "json"), default="table")
        parser.add_argument(
            "--expiring-within",
            type=duration,
            default=dt.timedelta(days=14),
            metavar="DURATION",
            help="expiring-soon window (default 14d)",
        )
        parser.add_argument(
            "--stale-after",
            type=duration,
            default=dt.timedelta(days=7),
            metavar="DURATION",
            help="stale-after-rotation grace after a newer certificate appears (7d)",
        )
        parser.add_argument(
            "--flag",
            type=flags,
            default=set(),
            metavar="FLAGS",
            help="list only certificates with one of these flags (comma-separated)",
        )
        parser.add_argument(
            "--fail-on",
            type=flags,
            default=set(),
            metavar="FLAGS",
            help="exit 1 when a certificate has one of these flags (CI, cron)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = flag_rows(
            load_rows(),
            get_settings(),
            now=dt.datetime.now(dt.UTC),
            expiring_within=options["expiring_within"],
            stale_after=options["stale_after"],
        )
        shown = [r for r in rows if not options["flag"] or options["flag"] & set(r.flags)]
        if options["format"] == "json":
            self.stdout.write(json.dumps([_json(r) for r in shown], indent=2))
        else:
            self.stdout.write(_table(shown))
        failing = sorted({f.value for r in rows for f in r.flags if f in options["fail_on"]})
        if failing:
            raise CommandError(f"certificates flagged: {', '.join(failing)}", returncode=1)


def _json(row: Row) -> dict[str, Any]:
    return {
        "fingerprint": row.fingerprint,
        "identity": row.name,
        "spiffe_id": row.spiffe_id or None,
        "dns_sans": row.dns_sans,
        "uri_sans": row.uri_sans,
        "subject": row.subject,
        "issuer": row.issuer,
        "serial": row.serial,
        "not_before": row.not_before.isoformat(),
        "not_after": row.not_after.isoformat(),
        "first_seen": row.first_seen.isoformat(),
        "last_seen": row.last_seen.isoformat(),
        "source_networks": len(row.networks),
        "accepted": row.accepted,
        "refused": row.refused,
        "flags": [f.value for f in row.flags],
    }


def _table(rows: list[Row]) -> str:
    if not rows:
        return "No certificates in the inventory (is HOOKSHIELD['INVENTORY'] on?)."
    header = ("identity", "fingerprint", "expires", "last seen", "accepted", "refused", "flags")
    lines = [header, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cells(row: Row) -> tuple[str, str, str, str, str, str, str]:
    return (
        row.name[:48],
        row.fingerprint[:16],
        f"{row.not_after:%Y-%m-%d}",
        f"{row.last_seen:%Y-%m-%d %H:%M}",
        _counts(row.accepted),
        _counts(row.refused),
        ", ".join(f.value for f in row.flags) or "-",
    )


def _counts(counts: dict[str, int]) -> str:
    """``key:count`` pairs in key order; ``-`` for none."""
    return ", ".join(f"{key}:{n}" for key, n in sorted(counts.items())) or "-"
