"""The default replay store, on the database (SQLite here; PostgreSQL under make unit-postgresql).

Across processes and hosts: tests/integration/test_replay_database.py.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.models.signals import pre_delete
from django.test import Client
from django.utils import timezone

from hookshield.core.replay import StoreUnavailable
from hookshield.core.signatures import sign_v1
from hookshield.django.conf import get_settings
from hookshield.django.db_replay import UNCONFIRMED_KEPT, DatabaseReplayStore
from hookshield.django.guard import get_guard
from hookshield.django.models import Delivery
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config

pytestmark = pytest.mark.django_db

# Every DELETE of the store is this one conditional statement (db_replay._delete).
RAW_DELETE = "django.db.models.query.QuerySet._raw_delete"
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
        mock.patch(RAW_DELETE, side_effect=DatabaseError("gone")),
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
    assert deliver_twice(pki, b'{"type": "paid"}') == [200, 409]


def deliver_twice(pki: TestPki, body: bytes) -> list[int]:
    """The statuses of one signed delivery sent twice to the function view."""
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_v1(SECRET, msg_id, stamp, body),
    }
    client = Client(REMOTE_ADDR="127.0.0.1", raise_request_exception=False)
    return [
        client.post(
            "/hooks/payments/", data=body, content_type="application/json", headers=headers
        ).status_code
        for _ in range(2)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "statuses"),
    [
        (b'{"type": "paid"}', [200, 409]),
        (b'{"raise": true}', [500, 500]),  # released, then rolled back with the view's work
        (b'{"fail": true}', [500, 500]),  # released in the request's transaction
    ],
)
def test_under_atomic_requests_the_claim_commits_with_the_request(
    settings: Any, pki: TestPki, monkeypatch: pytest.MonkeyPatch, body: bytes, statuses: list[int]
) -> None:
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}}
    )
    assert deliver_twice(pki, body) == statuses  # a failed view's retry is not a replay
    assert Delivery.objects.count() == (1 if statuses[0] == 200 else 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("atomic", "statuses"), [(True, [500, 500]), (False, [500, 409])])
def test_under_atomic_requests_a_raising_view_takes_its_claim_with_the_rollback(
    settings: Any, pki: TestPki, monkeypatch: pytest.MonkeyPatch, atomic: bool, statuses: list[int]
) -> None:
    """With no release at all, only the request's transaction can take the claim back."""
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic)
    monkeypatch.setattr(DatabaseReplayStore, "release", lambda *args: None)
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}}
    )
    assert deliver_twice(pki, b'{"raise": true}') == statuses


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
        mock.patch(RAW_DELETE, side_effect=DatabaseError("locked")),
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


def lose_the_answer(store: DatabaseReplayStore, key: str) -> None:
    """``store`` claims ``key``: the row is committed, then the connection is lost."""
    real_insert = store._insert

    def committed_then_lost(*args: Any) -> bool:
        real_insert(*args)
        raise OperationalError("server closed the connection unexpectedly")

    with (
        mock.patch.object(store, "_insert", side_effect=committed_then_lost),
        pytest.raises(StoreUnavailable),
    ):
        store.claim(key, 600)
    assert Delivery.objects.filter(key=key).exists()


@pytest.mark.django_db(transaction=True)  # autocommit, as a view without ATOMIC_REQUESTS runs
def test_a_claim_committed_but_unanswered_is_given_back_before_the_next_claim() -> None:
    """Else the row, which nobody was told about, would refuse every retry of that delivery
    as a replay until it expires: the delivery accepted zero times."""
    store = DatabaseReplayStore("default")
    lose_the_answer(store, "k")
    assert store.claim("other", 600) is True
    assert not Delivery.objects.filter(key="k").exists()
    assert store.claim("k", 600) is True  # the sender's retry
    assert store.claim("k", 600) is False


@pytest.mark.django_db(transaction=True)
def test_only_the_unanswered_claim_is_given_back_by_its_token() -> None:
    store = DatabaseReplayStore("default")
    lose_the_answer(store, "k")
    Delivery.objects.filter(key="k").update(token="another claim's")  # expired, claimed since
    assert store.claim("other", 600) is True
    assert Delivery.objects.filter(key="k").exists()


@pytest.mark.django_db(transaction=True)
def test_a_give_back_that_fails_is_kept_and_does_not_fail_the_claim(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = DatabaseReplayStore("default")
    lose_the_answer(store, "k")
    with mock.patch(RAW_DELETE, side_effect=DatabaseError("lock")):
        assert store.claim("k2", 600) is True  # a lock wait on one row refuses no other claim
    assert "1 unconfirmed claim(s) not given back yet (DatabaseError)" in caplog.text
    assert Delivery.objects.filter(key="k").exists()
    assert store.claim("k3", 600) is True
    assert not Delivery.objects.filter(key="k").exists()  # given back this time


@pytest.mark.django_db(transaction=True)
def test_many_unanswered_claims_are_given_back_a_batch_per_statement() -> None:
    store = DatabaseReplayStore("default")
    keys = [f"k{i}" for i in range(250)]
    for key in keys:
        lose_the_answer(store, key)
    assert store.claim("other", 600) is True
    assert not Delivery.objects.filter(key__in=keys).exists()


def test_in_a_transaction_a_failed_claim_is_not_remembered() -> None:
    """Under ATOMIC_REQUESTS the claim commits with the request or not at all: a failed one was
    not stored, and nothing may be given back for it."""
    from django.db import connection

    assert connection.in_atomic_block
    store = DatabaseReplayStore("default")
    with (
        mock.patch("django.db.models.query.QuerySet.create", side_effect=OperationalError("gone")),
        pytest.raises(StoreUnavailable),
    ):
        store.claim("k", 600)
    assert store._unconfirmed == {}


@pytest.mark.django_db(transaction=True)
def test_unconfirmed_claims_are_given_back_in_autocommit_only() -> None:
    """Inside a request's transaction the give-back would hold the row's lock through the view
    and go with a rollback: it waits for a claim in autocommit."""
    from django.db import transaction

    store = DatabaseReplayStore("default")
    lose_the_answer(store, "k")
    with transaction.atomic():
        assert store.claim("other", 600) is True
    assert Delivery.objects.filter(key="k").exists()
    assert store.claim("third", 600) is True
    assert not Delivery.objects.filter(key="k").exists()


def test_a_row_an_older_worker_writes_without_a_token_is_a_claim() -> None:
    """A rolling deploy: after migrate, workers of the previous release insert no token."""
    from django.db import connection

    quote = connection.ops.quote_name
    table, key, expires = quote("hookshield_delivery"), quote("key"), quote("expires_at")
    insert = f"INSERT INTO {table} ({key}, {expires}) VALUES (%s, %s)"  # noqa: S608 (constants)
    with connection.cursor() as cursor:
        cursor.execute(insert, ["old", timezone.now() + dt.timedelta(seconds=600)])
    assert DatabaseReplayStore("default").claim("old", 600) is False


@pytest.fixture
def taken_over_while_deleted() -> Iterator[list[str]]:
    """A project-wide delete receiver, as projects connect (audit trails, cache invalidation),
    that lets another worker take the row over before it goes: it would run between the
    SELECT and the DELETE by primary key ``QuerySet.delete()`` makes once any receiver exists.
    Yields the keys it was called for (none, when the store's DELETE holds its condition)."""
    called: list[str] = []

    def take_over(sender: Any, instance: Any, **kwargs: Any) -> None:
        if isinstance(instance, Delivery):
            called.append(instance.key)
            later = timezone.now() + dt.timedelta(seconds=600)
            Delivery.objects.filter(key=instance.key).update(expires_at=later, token="taker")

    pre_delete.connect(take_over, weak=False, dispatch_uid="test-take-over")
    try:
        yield called
    finally:
        pre_delete.disconnect(dispatch_uid="test-take-over")


def test_the_sweep_never_deletes_a_claim_taken_over_meanwhile(
    taken_over_while_deleted: list[str],
) -> None:
    clock = Monotonic()
    store = DatabaseReplayStore("default", monotonic=clock)
    Delivery.objects.create(key="k", expires_at=timezone.now() - dt.timedelta(seconds=1))
    clock.now = DatabaseReplayStore.SWEEP_INTERVAL + 1
    store.claim("other", 600)  # this claim sweeps
    assert taken_over_while_deleted == [], "selected, then deleted by primary key alone"
    assert not Delivery.objects.filter(key="k").exists()  # swept, in one conditional DELETE


@pytest.mark.django_db(transaction=True)
def test_a_give_back_never_deletes_a_claim_taken_over_meanwhile(
    taken_over_while_deleted: list[str],
) -> None:
    store = DatabaseReplayStore("default")
    lose_the_answer(store, "k")
    assert store.claim("other", 600) is True  # gives "k" back, by its key and token at once
    assert taken_over_while_deleted == [], "selected, then deleted by primary key alone"
    assert not Delivery.objects.filter(key="k").exists()
    assert store.claim("k", 600) is True
    assert store.claim("k", 600) is False


def test_a_release_deletes_its_own_claim_only() -> None:
    """A view that ran past its claim's expiry: the id was claimed again since."""
    store = DatabaseReplayStore("default")
    assert store.claim("k", 600, "first") is True
    Delivery.objects.filter(key="k").update(token="since")  # expired, taken over by a retry
    store.release("k", "first", 600)
    assert Delivery.objects.filter(key="k", token="since").exists()
    store.release("k", "since", 600)
    assert not Delivery.objects.filter(key="k").exists()


def fail_a_release(error: Exception) -> DatabaseReplayStore:
    """A store that claimed "k" (token "mine"), then failed to release it with ``error``."""
    store = DatabaseReplayStore("default")
    assert store.claim("k", 600, "mine") is True
    with mock.patch(RAW_DELETE, side_effect=error), pytest.raises(StoreUnavailable):
        store.release("k", "mine", 600)
    return store


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])  # InterfaceError: closed
def test_a_release_that_failed_in_autocommit_is_given_back_by_the_next_claim(
    error: type[Exception],
) -> None:
    store = fail_a_release(error("connection lost"))
    assert Delivery.objects.filter(key="k").exists()
    assert store.claim("other", 600) is True  # gives "k" back first
    assert not Delivery.objects.filter(key="k").exists()
    assert store.claim("k", 600) is True  # the sender's retry


def test_in_a_transaction_a_failed_release_is_not_remembered() -> None:
    """Under ATOMIC_REQUESTS the release commits with the request or not at all."""
    from django.db import connection

    assert connection.in_atomic_block
    store = fail_a_release(OperationalError("gone"))
    assert store._unconfirmed == {}


def test_a_release_never_deletes_a_claim_taken_over_meanwhile(
    taken_over_while_deleted: list[str],
) -> None:
    store = DatabaseReplayStore("default")
    assert store.claim("k", 600, "mine") is True
    store.release("k", "mine", 600)
    assert taken_over_while_deleted == [], "selected, then deleted by primary key alone"
    assert not Delivery.objects.filter(key="k").exists()


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_claim_that_fails_with_any_database_error_is_an_unavailable_store(
    error: type[Exception],
) -> None:
    with (
        mock.patch("django.db.models.query.QuerySet.create", side_effect=error("closed")),
        pytest.raises(StoreUnavailable),
    ):
        DatabaseReplayStore("default").claim("k", 600)


def test_a_process_keeps_at_most_so_many_unconfirmed_claims(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = DatabaseReplayStore("default")
    expires = timezone.now() + dt.timedelta(seconds=600)
    for i in range(UNCONFIRMED_KEPT + 1):
        store._unconfirm(f"k{i}", "token", expires)
    assert len(store._unconfirmed) == UNCONFIRMED_KEPT
    assert f"replay store: {UNCONFIRMED_KEPT} unconfirmed claims kept, one more not" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_of_many_processes_taking_an_expired_claim_over_at_once_one_wins() -> None:
    """Each thread has a connection of its own, as each worker process has."""
    from django.db import connections

    Delivery.objects.create(key="k", expires_at=timezone.now() - dt.timedelta(seconds=1))
    start = threading.Barrier(8, timeout=30)
    outcomes: list[bool | str] = []

    def take_over() -> None:
        try:
            store = DatabaseReplayStore("default")
            start.wait()
            outcomes.append(store.claim("k", 600))
        except StoreUnavailable as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take_over) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes, key=str) == [False] * 7 + [True], outcomes  # every one answered
    assert DatabaseReplayStore("default").claim("k", 600) is False
