"""Rate limits, strict input, signatures and replay through the decorator (sync, async, CBV)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import pytest
from django.test import AsyncClient, Client

from hookshield.core.pipeline import Guard
from hookshield.core.replay import RedisReplayStore
from hookshield.core.signatures import sign_v1
from hookshield.django.guard import get_guard
from hookshield.pki import encodings
from tests.conftest import ALLOWED, OTHER, PLANTED, TestPki, guard_config

URLS = ["/hooks/payments/", "/hooks/payments-async/", "/hooks/payments-cbv/"]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def configure(settings: Any, pki: TestPki, **endpoint: Any) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED], **endpoint}},
        REPLAY_STORAGE="memory://",
    )


def cert_headers(pki: TestPki, cert: Any = None) -> dict[str, str]:
    return {
        "X-SSL-Client-Cert": encodings.nginx_escaped((cert or pki.allowed).certificate),
        "X-SSL-Client-Verify": "SUCCESS",
    }


def post(
    pki: TestPki,
    url: str,
    body: bytes = b'{"type": "paid"}',
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    method: str = "post",
) -> Any:
    client = Client(REMOTE_ADDR="127.0.0.1")
    return client.generic(
        method.upper(),
        url,
        data=body,
        content_type=content_type,
        headers={**cert_headers(pki), **(headers or {})},
    )


def signed(
    body: bytes, msg_id: str | None = None, at: int | None = None, secret: str = SECRET
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time()) if at is None else at
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_v1(secret, msg_id, stamp, body),
    }


def error(response: Any) -> dict[str, str]:
    return dict(json.loads(response.content)["error"])


@pytest.mark.parametrize("url", URLS)
def test_the_view_gets_the_parsed_payload_and_the_body(
    settings: Any, pki: TestPki, url: str
) -> None:
    configure(settings, pki)
    response = post(pki, url, b'{"type": "paid", "amount": 12}')
    assert response.status_code == 200
    assert response.json()["json"] == {"type": "paid", "amount": 12}
    assert response.json()["body_length"] == len(b'{"type": "paid", "amount": 12}')


@pytest.mark.parametrize("url", URLS)
def test_rate_limit_per_identity(settings: Any, pki: TestPki, url: str) -> None:
    configure(settings, pki, RATE="3/minute")
    statuses = [post(pki, url).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    refused = post(pki, url)
    assert error(refused)["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["RateLimit-Policy"] == '"3-per-1-minute";q=3;w=60'
    assert refused["RateLimit"].startswith('"3-per-1-minute";r=0;t=')


def test_the_rate_is_counted_per_matched_allow_entry(settings: Any, pki: TestPki) -> None:
    """Certificates one ALLOW entry admits share its quota (a rotated or second certificate of
    a service starts none of its own); a caller another entry admits has its own."""
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED, OTHER], "RATE": "2/minute"}},
        REPLAY_STORAGE="memory://",
    )

    def status(cert: Any) -> int:
        return int(post(pki, URLS[0], headers=cert_headers(pki, cert)).status_code)

    assert [status(pki.allowed), status(pki.named), status(pki.allowed)] == [200, 200, 429]
    assert [status(pki.other), status(pki.other), status(pki.other)] == [200, 200, 429]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_get_405(settings: Any, pki: TestPki, url: str, method: str) -> None:
    configure(settings, pki)
    response = post(pki, url, method=method)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert error(response)["code"] == "method_not_allowed"


def test_405_is_decided_after_identity(settings: Any, pki: TestPki) -> None:
    configure(settings, pki)
    client = Client(REMOTE_ADDR="127.0.0.1")
    assert client.get(URLS[0]).status_code == 401


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
        (b'{"a": 1', "application/json", 400, "malformed_body"),
        (b'{"a": "\xff"}', "application/json", 400, "malformed_body"),
        (b'{"a": 1, "a": 2}', "application/json", 400, "malformed_body"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", 400, "malformed_body"),
        (b'{"big": "' + b"x" * 300_000 + b'"}', "application/json", 413, "body_too_large"),
    ],
)
def test_bad_input_gets_its_4xx(
    settings: Any, pki: TestPki, body: bytes, content_type: str, status: int, code: str
) -> None:
    configure(settings, pki)
    for url in URLS:
        response = post(pki, url, body, content_type=content_type)
        assert response.status_code == status
        assert error(response)["code"] == code


def test_schema_violation_is_422_naming_the_path(settings: Any, pki: TestPki) -> None:
    schema = {"type": "object", "required": ["type"], "properties": {"amount": {"type": "integer"}}}
    configure(settings, pki, SCHEMA=schema)
    response = post(pki, URLS[0], b'{"type": "paid", "amount": "4111111111111111"}')
    assert response.status_code == 422
    message = error(response)["message"]
    assert "$['amount']" in message
    assert "4111111111111111" not in message


def test_max_body_and_json_limits_per_endpoint(settings: Any, pki: TestPki) -> None:
    configure(settings, pki, MAX_BODY=64, MAX_JSON_DEPTH=2, MAX_JSON_KEYS=3)
    assert post(pki, URLS[0], b'{"a": {"b": 1}}').status_code == 200
    assert post(pki, URLS[0], b'{"a": {"b": {"c": 1}}}').status_code == 400
    assert post(pki, URLS[0], b'{"a": 1, "b": 2, "c": 3, "d": 4}').status_code == 400
    assert post(pki, URLS[0], b'{"a": "' + b"x" * 64 + b'"}').status_code == 413


@pytest.mark.parametrize("url", URLS)
def test_signed_delivery_once_then_replay_refused(settings: Any, pki: TestPki, url: str) -> None:
    configure(settings, pki, SIGNING_SECRETS=[SECRET])
    body = b'{"type": "paid"}'
    headers = signed(body)
    first = post(pki, url, body, headers=headers)
    assert first.status_code == 200
    assert first.json()["delivery_id"] == headers["webhook-id"]
    again = post(pki, url, body, headers=headers)
    assert again.status_code == 409
    assert error(again)["code"] == "delivery_replayed"


def test_signature_refusals(settings: Any, pki: TestPki) -> None:
    configure(settings, pki, SIGNING_SECRETS=[SECRET], TIMESTAMP_TOLERANCE=300)
    body = b'{"type": "paid"}'
    unsigned = post(pki, URLS[0], body)
    assert (unsigned.status_code, error(unsigned)["code"]) == (401, "signature_missing")
    stale = post(pki, URLS[0], body, headers=signed(body, at=int(time.time()) - 3600))
    assert (stale.status_code, error(stale)["code"]) == (401, "timestamp_out_of_tolerance")
    other_key = signed(body, secret="whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
    wrong = post(pki, URLS[0], body, headers=other_key)
    assert (wrong.status_code, error(wrong)["code"]) == (401, "signature_invalid")
    tampered = post(pki, URLS[0], b'{"type": "refund"}', headers=signed(body))
    assert (tampered.status_code, error(tampered)["code"]) == (401, "signature_invalid")


def test_a_failed_view_releases_the_delivery_id_for_the_retry(settings: Any, pki: TestPki) -> None:
    configure(settings, pki, SIGNING_SECRETS=[SECRET])
    body = b'{"type": "paid", "fail": true}'
    headers = signed(body)
    assert post(pki, URLS[0], body, headers=headers).status_code == 500
    retry = post(pki, URLS[0], body, headers=headers)
    assert retry.status_code == 500  # the view still fails, but the guard let the retry in
    assert "error" not in retry.json()


@pytest.mark.parametrize("url", URLS)
def test_a_view_that_raises_releases_the_delivery_id_for_the_retry(
    settings: Any, pki: TestPki, url: str
) -> None:
    configure(settings, pki, SIGNING_SECRETS=[SECRET])
    body = b'{"type": "paid", "raise": true}'
    headers = {**cert_headers(pki), **signed(body)}
    client = Client(REMOTE_ADDR="127.0.0.1", raise_request_exception=False)
    for _ in range(2):  # the retry is let in (and raises again), not refused as a replay (409)
        response = client.post(url, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 500
        assert response.get("Content-Type") != "application/json"  # Django's page, not a guard's


@pytest.mark.parametrize("url", ["/hooks/payments-class/", "/hooks/payments-async-class/"])
def test_a_class_view_whose_setup_raises_releases_the_delivery_id(
    settings: Any, pki: TestPki, url: str
) -> None:
    # An async class view's setup() and dispatch() run when the guard calls it, before there is
    # a coroutine to await: a failure there is the view's too.
    configure(settings, pki, SIGNING_SECRETS=[SECRET])
    body = b'{"type": "paid", "raise_in_setup": true}'
    headers = {**cert_headers(pki), **signed(body)}
    client = Client(REMOTE_ADDR="127.0.0.1", raise_request_exception=False)
    for _ in range(2):  # the retry is let in (and raises again), not refused as a replay (409)
        response = client.post(url, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 500
        assert response.get("Content-Type") != "application/json"


def test_replay_on_the_django_cache(settings: Any, pki: TestPki) -> None:
    settings.CACHES = {
        "webhooks": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "replay-test",
        }
    }
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}},
        REPLAY_STORAGE="webhooks",
    )
    body = b"{}"
    headers = signed(body)
    assert post(pki, URLS[0], body, headers=headers).status_code == 200
    assert post(pki, URLS[0], body, headers=headers).status_code == 409


def test_an_unreachable_replay_store_fails_closed(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}},
        REPLAY_STORAGE="redis://127.0.0.1:1/0",
    )
    body = b"{}"
    response = post(pki, URLS[0], body, headers=signed(body))
    assert response.status_code == 503
    assert error(response)["code"] == "replay_store_unavailable"


def test_one_redis_uri_for_both_is_one_client(settings: Any, pki: TestPki, redis_url: str) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}},
        RATE_LIMIT_STORAGE=redis_url,
        REPLAY_STORAGE=redis_url,
    )
    guard = get_guard()
    assert isinstance(guard, Guard)
    assert isinstance(guard.replay, RedisReplayStore)
    assert guard.replay.storage is guard.limiter.redis
    settings.HOOKSHIELD = {**settings.HOOKSHIELD, "REPLAY_STORAGE": redis_url.rsplit("/", 1)[0]}
    guard = get_guard()
    assert isinstance(guard, Guard)
    assert isinstance(guard.replay, RedisReplayStore)
    assert guard.replay.storage is not guard.limiter.redis  # another URI: a client of its own


def test_an_unknown_cache_alias_makes_the_guard_unavailable(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}},
        REPLAY_STORAGE="nosuchcache",
    )
    response = post(pki, URLS[0], b"{}", headers=signed(b"{}"))
    assert response.status_code == 503
    assert error(response)["code"] == "guard_unavailable"


async def test_async_view_with_redis_limits_leaves_the_event_loop(
    settings: Any, pki: TestPki, redis_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={unique: {"ALLOW": [ALLOWED], "RATE": "2/minute"}},
        RATE_LIMIT_STORAGE=redis_url,
    )
    from django.http import JsonResponse
    from django.urls import path

    from hookshield.django import decorators, guard, webhook

    ran_in: list[tuple[str, int]] = []  # (guard step, thread) for each call

    def recorded(step: Any) -> Any:
        def run(*args: Any) -> Any:
            ran_in.append((step.__name__, threading.get_ident()))
            return step(*args)

        run.__name__ = step.__name__
        return run

    monkeypatch.setattr(decorators, "check_request", recorded(guard.check_request))
    monkeypatch.setattr(decorators, "release", recorded(guard.release))

    @webhook(unique)
    async def view(request: Any) -> Any:
        return JsonResponse({"json": request.webhook.json}, status=500)  # a failing view

    settings.ROOT_URLCONF = type("Urls", (), {"urlpatterns": [path("h/", view)]})
    client = AsyncClient(REMOTE_ADDR="127.0.0.1")
    statuses = []
    for _ in range(3):
        response = await client.post(
            "/h/", data=b"{}", content_type="application/json", headers=cert_headers(pki)
        )
        statuses.append(response.status_code)
    assert statuses == [500, 500, 429]
    # Every Redis-bound step (the check, and the release after the view's 500s) left the loop.
    loop_thread = threading.get_ident()
    assert [name for name, _ in ran_in].count("release") == 2
    assert all(thread != loop_thread for _, thread in ran_in)


@pytest.mark.django_db(transaction=True)
async def test_async_view_with_the_database_replay_store_queries_off_the_event_loop(
    settings: Any, pki: TestPki, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Django's ORM refuses to run in the event loop's thread: the database store's claim and
    release run in the request's sync thread, one thread for both (thread-sensitive)."""
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={unique: {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}}
    )
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.http import JsonResponse
    from django.urls import path

    from hookshield.django import db_replay, webhook

    ran_in: list[tuple[str, int]] = []  # (store method, thread) for each call
    for name in ("claim", "release"):
        real = getattr(db_replay.DatabaseReplayStore, name)

        def spy(self: Any, *args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            ran_in.append((_name, threading.get_ident()))
            return _real(self, *args, **kw)

        monkeypatch.setattr(db_replay.DatabaseReplayStore, name, spy)

    @webhook(unique)
    async def view(request: Any) -> Any:
        return JsonResponse({}, status=500)  # a failing view: its id is released

    settings.ROOT_URLCONF = type("Urls", (), {"urlpatterns": [path("h/", view)]})
    client = AsyncClient(REMOTE_ADDR="127.0.0.1")
    body = b"{}"
    headers = {**cert_headers(pki), **signed(body)}
    try:
        for _ in range(2):  # released after the first, so the second is let in too
            response = await client.post(
                "/h/", data=body, content_type="application/json", headers=headers
            )
            assert response.status_code == 500
    finally:
        # The test client keeps that thread's connection open (a server closes it when the
        # request ends): closed in that thread, so the test database can be dropped.
        await sync_to_async(connections.close_all, thread_sensitive=True)()
    assert [name for name, _ in ran_in] == ["claim", "release", "claim", "release"]
    threads = {thread for _, thread in ran_in}
    assert len(threads) == 1  # the request's one sync thread
    assert threading.get_ident() not in threads


def test_planted_secrets_in_deliveries_never_reach_the_logs(
    settings: Any, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    """Payloads, headers and refusals carrying secrets; the suite-wide scan checks every line."""
    caplog.set_level(logging.DEBUG)
    schema = {"type": "object", "properties": {"card": {"type": "integer"}}}
    configure(settings, pki, SCHEMA=schema, SIGNING_SECRETS=[SECRET], RATE="2/minute")
    body = json.dumps(
        {
            "card": PLANTED["card"],
            "token": PLANTED["bearer"],
            "aws": PLANTED["aws"],
            "secret": PLANTED["whsec"],
            "pem": PLANTED["private_key"],
        }
    ).encode()
    noisy = {"Authorization": f"Bearer {PLANTED['bearer']}", "X-Api-Token": PLANTED["whsec"]}
    responses = [
        post(pki, URLS[0], body, headers={**noisy, **signed(body)}),  # 422: schema
        post(pki, URLS[0], body, headers=noisy),  # 422 again: input is checked before signatures
        post(pki, URLS[0], body, headers={**noisy, **signed(body)}),  # 429: rate
    ]
    assert [r.status_code for r in responses] == [422, 422, 429]
    for response in responses:
        for secret in PLANTED.values():
            assert secret not in response.content.decode()
    assert caplog.records  # decisions were logged, and scanned at the end of the session
