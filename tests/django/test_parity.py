"""Every view kind x every protection: the same answer, and each decision observed exactly once.

View kinds: function views (sync, async), class-based views (``method_decorator`` on dispatch,
``@webhook`` on the class, an async class), DRF's ``APIView``, a generic view and a viewset. All
serve the one endpoint below, which configures every protection at once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.test import AsyncClient, Client
from prometheus_client import REGISTRY

from hookshield.core.signatures import sign_v1
from hookshield.django.guard import get_guard
from hookshield.django.models import Sighting
from hookshield.pki import IssuedCertificate, encodings
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.django.test_inventory import Clock, fingerprint, recorder_of

pytestmark = pytest.mark.django_db

KINDS = {
    "function": "/hooks/payments/",
    "function-async": "/hooks/payments-async/",
    "class-method-decorator": "/hooks/payments-cbv/",
    "class-decorated": "/hooks/payments-class/",
    "class-async": "/hooks/payments-async-class/",
    "class-async-method-decorator": "/hooks/payments-async-cbv/",
    "drf-apiview": "/drf/payments/",
    "drf-generic": "/drf/payments-generic/",
    "drf-viewset": "/drf/payments-viewset/",
}
ASYNC_KINDS = {"function-async", "class-async", "class-async-method-decorator"}
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PROXY_SECRET = "parity-proxy-secret-0123456789"
RATE = 4
BODY = b'{"type": "paid", "amount": 12}'
SCHEMA = {"type": "object", "required": ["type"], "properties": {"amount": {"type": "integer"}}}


@pytest.fixture
def every_protection(settings: Any, pki: TestPki) -> Clock:
    settings.ROOT_URLCONF = "tests.urls_drf"
    settings.REST_FRAMEWORK = {
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    }
    settings.HOOKSHIELD = guard_config(
        pki,
        PROXY_SECRET=PROXY_SECRET,
        MAX_CERT_LIFETIME_DAYS=90,
        LONG_LIVED="reject",
        INVENTORY=True,  # REPLAY_STORAGE: the default, the database
        METRICS=True,
        ENDPOINTS={
            "payments": {
                "ALLOW": [ALLOWED],
                "RATE": f"{RATE}/minute",
                "METHODS": ["POST"],
                "CONTENT_TYPES": ["application/json"],
                "MAX_BODY": 1024,
                "MAX_JSON_DEPTH": 4,
                "SCHEMA": SCHEMA,
                "SIGNING_SECRETS": [SIGNING_SECRET],
                "TIMESTAMP_TOLERANCE": 300,
            }
        },
    )
    caches["default"].clear()  # the inventory's counters of earlier tests
    clock = Clock()
    recorder_of(get_guard(), clock)
    return clock


@dataclass
class Delivery:
    """One request as a sender (or an attacker) would make it."""

    cert: str | None = "allowed"
    peer: str = "127.0.0.1"
    proxy_secret: str | None = PROXY_SECRET
    method: str = "POST"
    body: bytes = BODY
    content_type: str = "application/json"
    sign: bool = True
    signed_body: bytes | None = None  # sign other bytes than are sent
    timestamp_offset: int = 0
    msg_id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex}")

    def headers(self, pki: TestPki) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.cert is not None:
            issued: IssuedCertificate = getattr(pki, self.cert)
            headers["X-SSL-Client-Cert"] = encodings.nginx_escaped(issued.certificate)
            headers["X-SSL-Client-Verify"] = "SUCCESS"
        if self.proxy_secret is not None:
            headers["X-Hookshield-Proxy-Secret"] = self.proxy_secret
        if self.sign:
            stamp = int(time.time()) + self.timestamp_offset
            signed = self.body if self.signed_body is None else self.signed_body
            headers["webhook-id"] = self.msg_id
            headers["webhook-timestamp"] = str(stamp)
            headers["webhook-signature"] = sign_v1(SIGNING_SECRET, self.msg_id, stamp, signed)
        return headers


class _AsgiClient(AsyncClient):
    """An ASGI test client whose requests come from ``peer`` (the scope's client address)."""

    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
        scope["client"] = [self.peer, 0]
        return scope


def send(pki: TestPki, kind: str, delivery: Delivery) -> Any:
    url = KINDS[kind]
    kwargs: dict[str, Any] = {
        "data": delivery.body,
        "content_type": delivery.content_type,
        "headers": delivery.headers(pki),
    }
    if kind in ASYNC_KINDS:  # async views as ASGI serves them
        client = _AsgiClient(delivery.peer)

        async def over_asgi() -> Any:
            return await client.generic(delivery.method, url, **kwargs)

        return async_to_sync(over_asgi)()
    return Client(REMOTE_ADDR=delivery.peer).generic(delivery.method, url, **kwargs)


def _replayed() -> list[Delivery]:
    first = Delivery()
    return [first, Delivery(msg_id=first.msg_id)]


# name -> (the deliveries; only the last is judged), expected status, expected code ("" = accepted)
CASES: dict[str, tuple[Callable[[], list[Delivery]], int, str]] = {
    "accepted": (lambda: [Delivery()], 200, ""),
    "untrusted-peer": (lambda: [Delivery(peer="192.0.2.1")], 401, "client_cert_missing"),
    "no-certificate": (lambda: [Delivery(cert=None)], 401, "client_cert_missing"),
    "forged-certificate": (lambda: [Delivery(cert="rogue")], 401, "client_cert_untrusted"),
    "foreign-ca": (lambda: [Delivery(cert="foreign")], 401, "client_cert_untrusted"),
    "expired": (lambda: [Delivery(cert="expired")], 401, "client_cert_expired"),
    "missing-proxy-secret": (lambda: [Delivery(proxy_secret=None)], 401, "client_cert_missing"),
    "wrong-proxy-secret": (
        lambda: [Delivery(proxy_secret=PROXY_SECRET[:-1] + "X")],
        401,
        "client_cert_missing",
    ),
    "identity-not-allowed": (lambda: [Delivery(cert="other")], 403, "identity_not_allowed"),
    "long-lived": (lambda: [Delivery(cert="long_lived")], 401, "client_cert_too_long_lived"),
    "rate": (lambda: [Delivery() for _ in range(RATE + 1)], 429, "rate_limited"),
    "method": (lambda: [Delivery(method="PUT")], 405, "method_not_allowed"),
    "content-type": (
        lambda: [Delivery(content_type="text/plain", body=b"paid")],
        415,
        "unsupported_media_type",
    ),
    "body-size": (
        lambda: [Delivery(body=b'{"type": "' + b"x" * 2048 + b'"}')],
        413,
        "body_too_large",
    ),
    "json-duplicate-keys": (
        lambda: [Delivery(body=b'{"type": "a", "type": "b"}')],
        400,
        "malformed_body",
    ),
    "json-depth": (
        lambda: [Delivery(body=b'{"type": "a", "x": [[[[[1]]]]]}')],
        400,
        "malformed_body",
    ),
    "schema": (lambda: [Delivery(body=b'{"amount": 12}')], 422, "schema_violation"),
    "unsigned": (lambda: [Delivery(sign=False)], 401, "signature_missing"),
    "signed-for-another-body": (
        lambda: [Delivery(signed_body=b'{"type": "refund"}')],
        401,
        "signature_invalid",
    ),
    "stale-timestamp": (
        lambda: [Delivery(timestamp_offset=-3600)],
        401,
        "timestamp_out_of_tolerance",
    ),
    "replay": (_replayed, 409, "delivery_replayed"),
}


def _decisions(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("hookshield_decisions_total", labels) or 0.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES)
def test_every_view_kind_answers_every_protection_alike(
    every_protection: Clock,
    pki: TestPki,
    kind: str,
    case: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    build, status, code = CASES[case]
    *before, judged = build()
    for delivery in before:
        assert send(pki, kind, delivery).status_code == 200
    believed = judged.peer == "127.0.0.1" and judged.proxy_secret == PROXY_SECRET
    labels = {
        "endpoint": "payments",
        "outcome": "refused" if code else "accepted",
        "code": code,
        # Metrics name verified identities an ALLOW list names; everyone else is "other".
        "identity": ALLOWED if believed and judged.cert == "allowed" else "other",
    }
    counted = _decisions(labels)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="hookshield")

    response = send(pki, kind, judged)

    assert response.status_code == status
    if code:
        assert json.loads(response.content)["error"]["code"] == code
        assert response["Cache-Control"] == "no-store"
    else:
        seen = response.json()
        assert seen["json"] == json.loads(BODY)
        assert seen["identity"] == ALLOWED
        assert seen["secret_header_visible"] is False
        if kind.startswith("drf"):
            drf = seen["drf_data"]
            assert drf == {"caller": ALLOWED, "spiffe_id": ALLOWED, "data": json.loads(BODY)}
    if status == 401:
        assert response["WWW-Authenticate"] == 'MutualTLS realm="webhooks"'
    if status == 405:
        assert response["Allow"] == "POST"
    if status == 429:
        assert 1 <= int(response["Retry-After"]) <= 60
    # The decision: one log line, one count, one inventory row (certificates our CA issued).
    lines = [r.hookshield for r in caplog.records if r.name == "hookshield.guard"]  # type: ignore[attr-defined]
    assert [line["code"] or "" for line in lines] == [code]
    assert _decisions(labels) == counted + 1
    recorder = recorder_of(get_guard(), every_protection)
    recorder.tick()
    if believed and judged.cert in ("allowed", "other", "expired", "long_lived"):
        cert = getattr(pki, str(judged.cert))
        rows = Sighting.objects.filter(
            certificate__fingerprint=fingerprint(cert),
            outcome="accepted" if not code else "refused",
            code=code,
        )
        assert sum(row.count for row in rows) == 1
    else:
        assert not Sighting.objects.filter(outcome="refused", code=code).exists()


@pytest.mark.parametrize("kind", KINDS)
def test_an_accepted_long_lived_certificate_is_a_warning_on_every_kind(
    settings: Any, pki: TestPki, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ROOT_URLCONF = "tests.urls_drf"
    settings.HOOKSHIELD = guard_config(pki, MAX_CERT_LIFETIME_DAYS=90, LONG_LIVED="warn")
    caplog.set_level(logging.INFO, logger="hookshield")
    response = send(pki, kind, Delivery(cert="long_lived", proxy_secret=None, sign=False))
    assert response.status_code == 200
    (line,) = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert line.levelno == logging.WARNING
    assert "long-lived" in line.getMessage()
