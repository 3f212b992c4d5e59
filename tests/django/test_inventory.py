"""The certificate inventory: sightings from real guard decisions, flags, the command, the admin.

Runs on SQLite, and on the real PostgreSQL with HOOKSHIELD_TEST_DATABASE=postgresql (make test
does both).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives import hashes
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import Client, RequestFactory

from hookshield.core.errors import Code
from hookshield.core.pipeline import Guard, Webhook
from hookshield.django import inventory
from hookshield.django.conf import get_settings
from hookshield.django.guard import build_guard, check_request, get_guard
from hookshield.django.insight import Flag
from hookshield.django.inventory import InventoryRecorder
from hookshield.django.models import Certificate, Sighting
from hookshield.pki import IssuedCertificate, encodings, self_signed_copy
from tests.conftest import ALLOWED, DAY, TestPki, guard_config

pytestmark = pytest.mark.django_db

NOW = dt.datetime.now(dt.UTC)
SVC = "spiffe://corp.example/"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    caches["default"].clear()  # counters and gates of earlier tests


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def recorder_of(guard: Guard | Any, clock: Clock) -> InventoryRecorder:
    assert isinstance(guard, Guard)
    (recorder,) = [o for o in guard.observers if isinstance(o, InventoryRecorder)]
    recorder.background = False  # the test moves the counts with tick()
    recorder.clock = clock
    return recorder


@pytest.fixture
def recorder(settings: Any, pki: TestPki, clock: Clock) -> InventoryRecorder:
    settings.HOOKSHIELD = guard_config(pki, INVENTORY=True)
    return recorder_of(get_guard(), clock)


def deliver(
    cert: IssuedCertificate,
    endpoint: str = "payments",
    *,
    network: str = "10.1.1.7",
    content_type: str = "application/json",
    guard: Guard | None = None,
) -> Webhook | Any:
    """One delivery through the guard (the process's, or `guard`), from a client at `network`."""
    request = RequestFactory().post(
        f"/hooks/{endpoint}/",
        data=b'{"type": "paid"}',
        content_type=content_type,
        headers={
            "X-SSL-Client-Cert": encodings.nginx_escaped(cert.certificate),
            "X-SSL-Client-Verify": "SUCCESS",
            "X-Forwarded-For": network,
        },
        REMOTE_ADDR="127.0.0.1",
    )
    if guard is None:
        return check_request(request, endpoint)
    with mock.patch("hookshield.django.guard.get_guard", return_value=guard):
        return check_request(request, endpoint)


def fingerprint(cert: IssuedCertificate) -> str:
    return cert.certificate.fingerprint(hashes.SHA256()).hex()


def sightings(cert: IssuedCertificate) -> dict[tuple[str, str, str], int]:
    return {
        (s.endpoint, s.outcome, s.code): s.count
        for s in Sighting.objects.filter(certificate__fingerprint=fingerprint(cert))
    }


# -- recording ---------------------------------------------------------------------------------


def test_accepted_and_refused_deliveries_become_sightings(
    recorder: InventoryRecorder, pki: TestPki
) -> None:
    for _ in range(3):
        assert isinstance(deliver(pki.allowed), Webhook)
    deliver(pki.allowed, content_type="text/plain")
    deliver(pki.other)
    assert Certificate.objects.count() == 0  # nothing is written on the request path
    assert recorder.tick() == 3

    assert sightings(pki.allowed) == {
        ("payments", "accepted", ""): 3,
        ("payments", "refused", Code.UNSUPPORTED_MEDIA_TYPE): 1,
    }
    assert sightings(pki.other) == {("payments", "refused", Code.IDENTITY_NOT_ALLOWED): 1}
    allowed = Certificate.objects.get(fingerprint=fingerprint(pki.allowed))
    assert allowed.spiffe_id == ALLOWED
    assert allowed.name == ALLOWED
    assert allowed.serial == f"{pki.allowed.certificate.serial_number:x}"
    assert allowed.not_after == pki.allowed.certificate.not_valid_after_utc
    assert allowed.issuer == pki.root.certificate.subject.rfc4514_string()
    assert allowed.networks == ["10.1.1.0/24"]


def test_only_certificates_our_anchors_issued_are_inventoried(
    settings: Any, pki: TestPki, clock: Clock
) -> None:
    settings.HOOKSHIELD = guard_config(
        pki, INVENTORY=True, CRLS=[str(pki.crl_file), str(pki.intermediate_crl_file)]
    )
    recorder = recorder_of(get_guard(), clock)
    ours = {
        pki.expired: Code.CLIENT_CERT_EXPIRED,
        pki.not_yet_valid: Code.CLIENT_CERT_NOT_YET_VALID,
        pki.revoked: Code.CLIENT_CERT_REVOKED,
    }
    # Anyone can mint these: a self-signed copy of a real certificate (also of an expired one,
    # refused as expired before any path is built), a certificate of another CA.
    minted = {
        pki.rogue: Code.CLIENT_CERT_UNTRUSTED,
        self_signed_copy(pki.expired.certificate): Code.CLIENT_CERT_EXPIRED,
        self_signed_copy(pki.not_yet_valid.certificate): Code.CLIENT_CERT_NOT_YET_VALID,
        pki.foreign: Code.CLIENT_CERT_UNTRUSTED,
    }
    for cert, code in {**ours, **minted}.items():
        for _ in range(2):
            refused = deliver(cert)
            assert not isinstance(refused, Webhook)
            assert refused.code is code
    recorder.tick()
    for cert, code in ours.items():
        assert sightings(cert) == {("payments", "refused", code): 2}
    assert Certificate.objects.count() == len(ours)


def test_later_intervals_add_to_the_same_rows(
    recorder: InventoryRecorder, pki: TestPki, clock: Clock
) -> None:
    deliver(pki.allowed)
    recorder.tick()
    clock.now += 61
    deliver(pki.allowed)
    deliver(pki.allowed, network="2001:db8:7::1")
    recorder.tick()
    assert sightings(pki.allowed) == {("payments", "accepted", ""): 3}
    cert = Certificate.objects.get(fingerprint=fingerprint(pki.allowed))
    assert cert.networks == ["10.1.1.0/24", "2001:db8:7::/48"]
    assert cert.last_seen - cert.first_seen == dt.timedelta(seconds=61)


def test_deliveries_without_a_certificate_are_not_inventoried(
    recorder: InventoryRecorder,
) -> None:
    request = RequestFactory().post("/hooks/payments/", REMOTE_ADDR="127.0.0.1")
    check_request(request, "payments")
    assert recorder.tick() == 0
    assert Certificate.objects.count() == 0


def test_one_database_write_per_certificate_and_endpoint_per_interval_across_processes(
    recorder: InventoryRecorder,
    pki: TestPki,
    clock: Clock,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A second process: its own guard and recorder, the same (shared) cache and database.
    other_guard = build_guard(get_settings())
    other_process = recorder_of(other_guard, clock)
    writes: list[tuple[str, str]] = []
    real_write = inventory._write

    def counting_write(fingerprint: str, endpoint: str, *args: Any) -> None:
        writes.append((fingerprint, endpoint))
        real_write(fingerprint, endpoint, *args)

    monkeypatch.setattr(inventory, "_write", counting_write)
    for _ in range(30):
        deliver(pki.allowed)
    for _ in range(20):
        deliver(pki.allowed, guard=other_guard)
    recorder.tick()
    other_process.tick()  # same interval: its counts go to the cache, the gate is taken
    assert len(writes) == 1
    assert sightings(pki.allowed) == {("payments", "accepted", ""): 30}

    clock.now += 60
    for _ in range(5):
        deliver(pki.allowed)
    other_process.tick()  # still owes the pair: wins this interval, drains the 20 it pushed
    recorder.tick()  # pushes its 5 after that drain; the gate is taken: they wait in the cache
    assert len(writes) == 2
    assert sightings(pki.allowed) == {("payments", "accepted", ""): 50}
    clock.now += 60
    other_process.tick()  # owes nothing any more
    recorder.tick()
    assert len(writes) == 3
    assert sightings(pki.allowed) == {("payments", "accepted", ""): 55}  # nothing lost
    clock.now += 60
    recorder.tick()
    other_process.tick()
    assert len(writes) == 3  # nothing left to write


def test_a_database_error_never_fails_a_delivery_and_loses_no_count(
    recorder: InventoryRecorder, pki: TestPki, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise OperationalError("database is down")

    monkeypatch.setattr(inventory, "_write", broken)
    client = Client(REMOTE_ADDR="127.0.0.1")
    headers = {
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
    }
    for _ in range(2):
        response = client.post(
            "/hooks/payments/", b"{}", content_type="application/json", headers=headers
        )
        assert response.status_code == 200
    assert recorder.tick() == 0  # logged, kept
    monkeypatch.undo()
    clock.now += 60
    assert recorder.tick() == 1
    assert sightings(pki.allowed) == {("payments", "accepted", ""): 2}


def test_a_cache_outage_keeps_the_counts_in_the_process(
    recorder: InventoryRecorder, pki: TestPki, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(pki.allowed)
    cache = caches["default"]

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "set", down)
    assert recorder.tick() == 0
    deliver(pki.allowed)
    monkeypatch.undo()
    clock.now += 60
    assert recorder.tick() == 1
    assert sightings(pki.allowed) == {("payments", "accepted", ""): 2}


@pytest.mark.django_db(transaction=True)
def test_the_background_worker_writes_without_being_asked(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, INVENTORY=True)
    guard = get_guard()
    assert isinstance(guard, Guard)
    recorder = InventoryRecorder(guard.verifier, forwarded=True, interval=0.05)
    guard.observers = (recorder,)
    deliver(pki.allowed)
    try:
        for _ in range(200):  # waits up to 10 s for the worker; asserts nothing about time
            try:
                if Sighting.objects.exists():
                    break
            except OperationalError:  # SQLite's shared in-memory test database: the worker
                pass  # holds the table ("database table is locked"); ask again
            threading.Event().wait(0.05)
    finally:
        recorder.close()
    assert sightings(pki.allowed) == {("payments", "accepted", ""): 1}


# -- insight -----------------------------------------------------------------------------------


@dataclass
class Fleet:
    """Certificates whose traffic exercises every flag, and the flags each must get."""

    expected: dict[str, set[Flag]]
    certs: dict[str, IssuedCertificate]


@pytest.fixture
def fleet(settings: Any, pki: TestPki, clock: Clock) -> Fleet:
    settings.HOOKSHIELD = guard_config(
        pki,
        INVENTORY=True,
        MAX_CERT_LIFETIME_DAYS=90,
        ENDPOINTS={
            "payments": {
                "ALLOW": [
                    f"{SVC}{name}"
                    for name in (
                        "healthy",
                        "long-lived",
                        "expiring",
                        "expired",
                        "roaming",
                        "rotated",
                        "noisy",
                        "two-hooks",
                    )
                ]
                + ["dns:payments.svc.internal"]
            },
            "orders": {"ALLOW": [f"{SVC}two-hooks", "dns:orders.svc.internal"]},
        },
    )
    recorder = recorder_of(get_guard(), clock)
    root = pki.root

    def client(name: str, **kwargs: Any) -> IssuedCertificate:
        kwargs.setdefault("lifetime", 60 * DAY)
        kwargs.setdefault("not_before", NOW - DAY)
        return root.issue_client(spiffe_id=f"{SVC}{name}", **kwargs)

    certs = {
        "healthy": client("healthy"),
        "long-lived": client("long-lived", lifetime=400 * DAY),
        "expiring": client("expiring", not_before=NOW - 50 * DAY),
        "expired": client("expired", not_before=NOW - 40 * DAY, lifetime=30 * DAY),
        "roaming": client("roaming"),
        "two-identities": root.issue_client(
            dns_names=["payments.svc.internal", "orders.svc.internal"],
            lifetime=60 * DAY,
        ),
        "two-hooks": client("two-hooks"),
        "rotated-old": client("rotated", not_before=NOW - 20 * DAY),
        "rotated-new": client("rotated", not_before=NOW - 12 * DAY),
        "stranger": client("stranger"),
        "noisy": client("noisy"),
    }
    expected = {
        "healthy": set(),
        "long-lived": {Flag.LONG_LIVED},
        "expiring": {Flag.EXPIRING_SOON},
        "expired": {Flag.EXPIRED_BUT_SEEN},
        "roaming": {Flag.SHARED},
        "two-identities": {Flag.SHARED},
        "two-hooks": set(),  # one identity calling two webhooks is not sharing
        "rotated-old": {Flag.STALE_AFTER_ROTATION},
        "rotated-new": set(),
        "stranger": {Flag.UNKNOWN},
        "noisy": {Flag.REFUSED_OFTEN},
    }
    for name in ("healthy", "long-lived", "expiring", "expired", "stranger"):
        deliver(certs[name])
    deliver(certs["roaming"], network="10.1.1.7")
    deliver(certs["roaming"], network="192.0.2.44")
    for endpoint in ("payments", "orders"):
        assert isinstance(deliver(certs["two-identities"], endpoint), Webhook)
        assert isinstance(deliver(certs["two-hooks"], endpoint), Webhook)
    deliver(certs["noisy"])
    for _ in range(12):
        deliver(certs["noisy"], content_type="text/plain")
    # Rotation: the new certificate took over ten days ago, the old one is still calling.
    clock.now = (NOW - 10 * DAY).timestamp()
    deliver(certs["rotated-new"])
    deliver(certs["rotated-old"])
    recorder.tick()
    clock.now = NOW.timestamp()
    deliver(certs["rotated-new"])
    deliver(certs["rotated-old"])
    recorder.tick()
    return Fleet(expected, certs)


def listing(*args: str) -> list[dict[str, Any]]:
    out = StringIO()
    call_command("hookshield_inventory", "--format", "json", *args, stdout=out)
    return list(json.loads(out.getvalue()))


def by_cert(fleet: Fleet, rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    names = {fingerprint(c): n for n, c in fleet.certs.items()}
    return {names[row["fingerprint"]]: set(row["flags"]) for row in rows}


def test_every_flag_is_reported_on_the_certificates_that_earn_it(fleet: Fleet) -> None:
    assert by_cert(fleet, listing()) == fleet.expected


def test_the_json_listing_says_which_webhooks_each_certificate_called(fleet: Fleet) -> None:
    rows = {row["identity"]: row for row in listing()}
    noisy = rows[f"{SVC}noisy"]
    assert noisy["accepted"] == {"payments": 1}
    assert noisy["refused"] == {Code.UNSUPPORTED_MEDIA_TYPE: 12}
    assert rows[f"{SVC}roaming"]["source_networks"] == 2
    assert rows[f"{SVC}two-hooks"]["accepted"] == {"payments": 1, "orders": 1}
    assert rows[f"{SVC}stranger"]["refused"] == {Code.IDENTITY_NOT_ALLOWED: 1}


def test_windows_and_filters(fleet: Fleet) -> None:
    flagged = by_cert(fleet, listing("--expiring-within", "5d", "--stale-after", "30d"))
    assert Flag.EXPIRING_SOON not in flagged["expiring"]
    assert Flag.STALE_AFTER_ROTATION not in flagged["rotated-old"]
    only = by_cert(fleet, listing("--flag", "shared,unknown"))
    assert set(only) == {"roaming", "two-identities", "stranger"}


def test_fail_on_exits_non_zero_only_for_the_flags_named(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CommandError) as failed:
        call_command("hookshield_inventory", "--fail-on", "long-lived,shared", stdout=StringIO())
    assert failed.value.returncode == 1
    assert "long-lived, shared" in str(failed.value)
    # The exit status a cron job or CI step sees.
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "hookshield_inventory", "--fail-on", "unknown"])
    assert exited.value.code == 1
    assert "certificates flagged: unknown" in capsys.readouterr().err


def test_fail_on_passes_when_no_certificate_has_the_flags(
    recorder: InventoryRecorder, pki: TestPki
) -> None:
    deliver(pki.allowed)
    recorder.tick()
    out = StringIO()
    call_command("hookshield_inventory", "--fail-on", "unknown,refused-often", stdout=out)
    assert ALLOWED in out.getvalue()


def test_bad_flags_and_durations_are_usage_errors() -> None:
    for args in (["--fail-on", "sharde"], ["--expiring-within", "two weeks"]):
        with pytest.raises(CommandError):
            call_command("hookshield_inventory", *args, stdout=StringIO())


def test_the_table_lists_each_certificate_with_its_flags(fleet: Fleet) -> None:
    out = StringIO()
    call_command("hookshield_inventory", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "identity",
        "fingerprint",
        "expires",
        "last",
        "seen",
        "accepted",
        "refused",
        "flags",
    ]
    long_lived = next(line for line in lines if f"{SVC}long-lived" in line)
    assert long_lived.endswith("long-lived")
    assert "payments:1" in long_lived
    noisy = next(line for line in lines if f"{SVC}noisy " in line)
    assert f"{Code.UNSUPPORTED_MEDIA_TYPE}:12" in noisy
    assert len(lines) == 1 + len(fleet.certs)


def test_an_empty_inventory_says_how_to_fill_it() -> None:
    out = StringIO()
    call_command("hookshield_inventory", stdout=out)
    assert "INVENTORY" in out.getvalue()


# -- admin -------------------------------------------------------------------------------------


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_lists_filters_by_flag_and_shows_sightings(
    fleet: Fleet, staff_client: Client
) -> None:
    listing_page = staff_client.get("/admin/hookshield/certificate/")
    assert listing_page.status_code == 200
    assert f"{SVC}long-lived" in listing_page.content.decode()

    for flag, names in (("refused-often", ["noisy"]), ("stale-after-rotation", ["rotated"])):
        filtered = staff_client.get("/admin/hookshield/certificate/", {"flag": flag})
        assert filtered.status_code == 200
        assert [c.name for c in filtered.context["cl"].result_list] == [
            f"{SVC}{name}" for name in names
        ]

    searched = staff_client.get("/admin/hookshield/certificate/", {"q": "roaming"})
    assert [c.name for c in searched.context["cl"].result_list] == [f"{SVC}roaming"]

    noisy = Certificate.objects.get(name=f"{SVC}noisy")
    detail = staff_client.get(f"/admin/hookshield/certificate/{noisy.pk}/change/")
    assert detail.status_code == 200
    assert Code.UNSUPPORTED_MEDIA_TYPE in detail.content.decode()


def test_the_admin_is_read_only(fleet: Fleet, staff_client: Client) -> None:
    noisy = Certificate.objects.get(name=f"{SVC}noisy")
    assert staff_client.get("/admin/hookshield/certificate/add/").status_code == 403
    response = staff_client.post(
        f"/admin/hookshield/certificate/{noisy.pk}/change/", {"name": "renamed"}
    )
    assert response.status_code == 403
    assert staff_client.post(f"/admin/hookshield/certificate/{noisy.pk}/delete/").status_code == 403
    assert Certificate.objects.get(pk=noisy.pk).name == f"{SVC}noisy"
