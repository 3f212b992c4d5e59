"""Abuse controls on real processes: nginx terminating mTLS in front of gunicorn with 4 workers,
rate limits and the replay store in the real Redis."""

from __future__ import annotations

import json
import multiprocessing
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hookshield.core.signatures import sign_v1
from tests.conftest import ALLOWED, PLANTED, TestPki, guard_config
from tests.integration.servers import (
    App,
    NginxServer,
    forget_counts,
    gunicorn_app,
    mtls_client,
    nginx,
)

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}, "amount": {"type": "integer"}},
}


@dataclass(frozen=True)
class Stack:
    app: App
    port: int
    pki: TestPki

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def stack(
    pki: TestPki, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    forget_counts(redis_url, "limited")
    base = tmp_path_factory.mktemp("abuse-stack")
    config = guard_config(
        pki,
        RATE_LIMIT_STORAGE=redis_url,
        REPLAY_STORAGE=redis_url,
        REDACT=["amount"],
        ENDPOINTS={
            "limited": {"ALLOW": [ALLOWED], "RATE": "100/minute"},
            "strict": {
                "ALLOW": [ALLOWED],
                "MAX_BODY": 4096,
                "MAX_JSON_DEPTH": 8,
                "SCHEMA": SCHEMA,
                "SIGNING_SECRETS": [SECRET],
            },
        },
    )
    server_cert, server_key = pki.files("server")
    with (
        gunicorn_app(base / "app", config, workers=4) as app,
        nginx(base / "nginx", server_cert, server_key, pki.ca_file, [NginxServer(app.port)]) as (
            port,
        ),
    ):
        yield Stack(app, port, pki)


def _flood(url: str, ca: str, cert: str, key: str, count: int, results: Any) -> None:
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    statuses: Counter[int] = Counter()
    with httpx.Client(verify=context, timeout=30) as client:  # one keep-alive connection
        for _ in range(count):
            statuses[
                client.post(
                    url, content=b"{}", headers={"Content-Type": "application/json"}
                ).status_code
            ] += 1
    results.put(dict(statuses))


def test_four_client_processes_share_one_limit_across_four_workers(stack: Stack) -> None:
    """Given 4 processes sending 500 deliveries in total against 100/minute through nginx to
    4 gunicorn workers, exactly 100 are accepted and every other one is a 429."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    cert, key = stack.pki.files("allowed")
    workers = [
        context.Process(
            target=_flood,
            args=(
                stack.url("/hooks/limited/"),
                str(stack.pki.ca_file),
                str(cert),
                str(key),
                125,
                results,
            ),
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    totals: Counter[int] = Counter()
    for _ in workers:
        totals.update(results.get(timeout=120))
    for worker in workers:
        worker.join(timeout=30)
    assert totals == {200: 100, 429: 400}


def deliver(
    stack: Stack,
    body: bytes,
    *,
    method: str = "POST",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    signed: bool = True,
) -> httpx.Response:
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if signed:
        msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
        all_headers.update(
            {
                "webhook-id": msg_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign_v1(SECRET, msg_id, stamp, body),
            }
        )
        all_headers.update(headers or {})
    with mtls_client(stack.pki, "allowed", timeout=30) as client:
        return client.request(
            method, stack.url("/hooks/strict/"), content=body, headers=all_headers
        )


def code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    return str(response.json()["error"]["code"])


def test_a_good_signed_delivery_then_its_replay_on_another_worker(stack: Stack) -> None:
    body = b'{"type": "payment.succeeded", "amount": 1200}'
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_v1(SECRET, msg_id, stamp, body),
    }
    first = deliver(stack, body, headers=headers, signed=False)
    assert first.status_code == 200
    assert first.json() == {"type": "payment.succeeded", "delivery_id": msg_id}
    # Four workers: the replays land on other processes too; the Redis store refuses them all.
    replays = [deliver(stack, body, headers=headers, signed=False) for _ in range(6)]
    assert {r.status_code for r in replays} == {409}
    assert {code(r) for r in replays} == {"delivery_replayed"}


@pytest.mark.parametrize(
    ("body", "kwargs", "status", "expected"),
    [
        (b"{}", {"method": "GET"}, 405, "method_not_allowed"),
        (b"{}", {"method": "PUT"}, 405, "method_not_allowed"),
        (
            b"type=x",
            {"content_type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        (b'{"type": "x", "pad": "' + b"x" * 8000 + b'"}', {}, 413, "body_too_large"),
        (b'{"type": ', {}, 400, "malformed_body"),
        (b'{"type": "\xff\xfe"}', {}, 400, "malformed_body"),
        (b'{"type": "a", "type": "b"}', {}, 400, "malformed_body"),
        (b"[" * 2000 + b"]" * 2000, {}, 400, "malformed_body"),
        (
            b'{"type": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}',
            {},
            400,
            "malformed_body",
        ),
        (
            b'{"type": "x", "amount": "' + PLANTED["card_digits"].encode() + b'"}',
            {},
            422,
            "schema_violation",
        ),
        (b'{"type": "x"}', {"signed": False}, 401, "signature_missing"),
        (
            b'{"type": "x"}',
            {"headers": {"webhook-timestamp": "1000000000"}},
            401,
            "timestamp_out_of_tolerance",
        ),
        (b'{"type": "x"}', {"headers": {"webhook-signature": "v1,AAAA"}}, 401, "signature_invalid"),
        (b'{"type": "x"}', {"headers": {"webhook-id": "has.dots"}}, 400, "signature_malformed"),
    ],
)
def test_every_bad_input_gets_its_4xx_never_a_5xx(
    stack: Stack, body: bytes, kwargs: dict[str, Any], status: int, expected: str
) -> None:
    response = deliver(stack, body, **kwargs)
    assert response.status_code == status
    assert code(response) == expected
    if status == 422:
        assert PLANTED["card_digits"] not in response.text


def test_a_chunked_body_over_the_limit(stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"type": "x", "pad": "'
        for _ in range(20):
            yield b"y" * 1024
        yield b'"}'

    with mtls_client(stack.pki, "allowed", timeout=30) as client:
        response = client.post(
            stack.url("/hooks/strict/"),
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert code(response) == "body_too_large"


def test_the_app_logs_hold_decisions_but_no_body(stack: Stack) -> None:
    deliver(stack, b'{"type": "x", "amount": "' + PLANTED["card_digits"].encode() + b'"}')
    lines = stack.app.decisions()
    assert any("code=schema_violation" in line for line in lines)
    assert all(PLANTED["card_digits"] not in line for line in lines)
    assert all(json.dumps(SCHEMA) not in line for line in lines)
