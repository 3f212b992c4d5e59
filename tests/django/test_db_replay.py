"""The default replay store, on the database (SQLite here; PostgreSQL under make unit-postgresql).

Across processes and hosts: tests/integration/test_replay_database.py.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone

from hookshield.core.replay import StoreUnavailable
from hookshield.core.signatures import sign_v1
from hookshield.django.conf import get_settings
from hookshield.django.db_replay import DatabaseReplayStore
from hookshield.django.guard import get_guard
from hookshield.django.models import Delivery
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config

pytestmark = pytest.mark.django_db

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_claimed_once_until_released() -> None:
    store = DatabaseReplayStore("default")
    assert store.claim("k1", 600) is True
    assert store.claim("k1", 600) is False
    assert store.claim("k2", 600) is True
    store.release("k1")
    assert store.claim("k1", 600) is True


def test_an_expired_claim_can_be_taken_again_once() -> None:
    store = DatabaseReplayStore("default")
    assert store.claim("k", 600) is True
    Delivery.objects.filter(key="k").update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert store.claim("k", 600) is True
    assert store.claim("k", 600) is False


def test_expired_claims_are_swept_at_most_once_a_minute() -> None:
    clock = Monotonic()
    store = DatabaseReplayStore("default", monotonic=clock)
    past = timezone.now() - dt.timedelta(seconds=1)
    Delivery.objects.bulk_create(Delivery(key=f"old{i}", expires_at=past) for i in range(5))
    store.claim("fresh", 600)
    assert Delivery.objects.count() == 6  # not yet a minute
    clock.now = DatabaseReplayStore.SWEEP_INTERVAL + 1
    store.claim("fresher", 600)
    assert set(Delivery.objects.values_list("key", flat=True)) == {"fresh", "fresher"}


def test_a_database_error_is_an_unavailable_store() -> None:
    store = DatabaseReplayStore("default")
    with (
        mock.patch("django.db.models.query.QuerySet.create", side_effect=DatabaseError("gone")),
        pytest.raises(StoreUnavailable, match="database 'default': DatabaseError"),
    ):
        store.claim("k", 600)
    with (
        mock.patch("django.db.models.query.QuerySet.delete", side_effect=DatabaseError("gone")),
        pytest.raises(StoreUnavailable, match="database 'default': DatabaseError"),
    ):
        store.release("k")


def test_the_default_storage_is_the_database(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}}
    )
    assert get_settings().replay_storage == "db://default"
    guard = get_guard()
    assert isinstance(getattr(guard, "replay", None), DatabaseReplayStore)
    msg_id, stamp, body = f"msg_{uuid.uuid4().hex}", int(time.time()), b'{"type": "paid"}'
    headers = {
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_v1(SECRET, msg_id, stamp, body),
    }
    client = Client(REMOTE_ADDR="127.0.0.1")
    statuses = [
        client.post(
            "/hooks/payments/", data=body, content_type="application/json", headers=headers
        ).status_code
        for _ in range(2)
    ]
    assert statuses == [200, 409]


def test_a_database_alias_that_does_not_exist_stops_the_start(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        REPLAY_STORAGE="db://replica",
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}},
    )
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=r"REPLAY_STORAGE'\] = 'db://replica' names no"):
        apps.get_app_config("hookshield").ready()


def test_a_failed_sweep_leaves_the_request_transaction_usable() -> None:
    """Under ATOMIC_REQUESTS the claim runs in the view's transaction (as every test here does)."""
    from django.db import connection, transaction

    assert connection.in_atomic_block
    clock = Monotonic()
    store = DatabaseReplayStore("default", monotonic=clock)
    clock.now = DatabaseReplayStore.SWEEP_INTERVAL + 1  # this claim sweeps
    with (
        transaction.atomic(),
        mock.patch(
            "django.db.models.query.QuerySet._raw_delete", side_effect=DatabaseError("locked")
        ),
    ):
        assert store.claim("k", 600) is True
        assert not connection.needs_rollback
        assert Delivery.objects.filter(key="k").exists()  # the view's next query works


def test_a_claim_swept_between_insert_and_take_over_is_inserted_again() -> None:
    store = DatabaseReplayStore("default")
    Delivery.objects.create(key="k", expires_at=timezone.now() - dt.timedelta(seconds=1))
    real_take_over = store._take_over

    def swept_meanwhile(*args: Any) -> bool:
        Delivery.objects.filter(key="k").delete()  # another process's sweep
        return real_take_over(*args)

    with mock.patch.object(store, "_take_over", side_effect=swept_meanwhile):
        assert store.claim("k", 600) is True
    assert store.claim("k", 600) is False
