from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config

URLS = ["/drf/payments/", "/drf/by-attribute/"]


@pytest.fixture
def drf(settings: Any, pki: TestPki) -> None:
    settings.ROOT_URLCONF = "tests.urls_drf"
    settings.REST_FRAMEWORK = {
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "UNAUTHENTICATED_USER": None,  # the project has no django.contrib.auth
    }
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "RATE": "3/minute"}}
    )


def post(pki: TestPki, url: str, cert: Any = None, peer: str = "127.0.0.1") -> Any:
    headers = {}
    if cert is not None:
        headers = {
            "X-SSL-Client-Cert": encodings.nginx_escaped(cert.certificate),
            "X-SSL-Client-Verify": "SUCCESS",
        }
    return Client(REMOTE_ADDR=peer).post(
        url, data=b'{"type": "paid"}', content_type="application/json", headers=headers
    )


@pytest.mark.parametrize("url", URLS)
def test_the_allowed_identity_gets_in(drf: None, pki: TestPki, url: str) -> None:
    response = post(pki, url, pki.allowed)
    assert response.status_code == 200
    assert response.json()["caller"] == ALLOWED


def test_request_auth_is_the_identity_and_data_is_parsed(drf: None, pki: TestPki) -> None:
    body = post(pki, URLS[0], pki.allowed).json()
    assert body["spiffe_id"] == ALLOWED
    assert body["data"] == {"type": "paid"}


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize(
    ("which", "peer", "status", "code"),
    [
        (None, "127.0.0.1", 401, "client_cert_missing"),
        ("rogue", "127.0.0.1", 401, "client_cert_untrusted"),
        ("expired", "127.0.0.1", 401, "client_cert_expired"),
        ("allowed", "192.0.2.1", 401, "client_cert_missing"),  # headers from an untrusted peer
        ("other", "127.0.0.1", 403, "identity_not_allowed"),
    ],
)
def test_refusals(
    drf: None,
    pki: TestPki,
    url: str,
    which: str | None,
    peer: str,
    status: int,
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    response = post(pki, url, getattr(pki, which) if which else None, peer)
    assert response.status_code == status
    assert "detail" in response.json()
    decisions = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert [r.hookshield["code"] for r in decisions] == [code]  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", URLS)
def test_the_throttle_uses_the_endpoint_rate(drf: None, pki: TestPki, url: str) -> None:
    statuses = [post(pki, url, pki.allowed).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = post(pki, url, pki.allowed)
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_throttle_shares_counts_with_the_decorator(drf: None, pki: TestPki) -> None:
    assert post(pki, URLS[0], pki.allowed).status_code == 200
    assert post(pki, URLS[1], pki.allowed).status_code == 200
    client = Client(REMOTE_ADDR="127.0.0.1")
    headers = {
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
    }
    assert (
        client.post(
            "/hooks/payments/", data=b"{}", content_type="application/json", headers=headers
        ).status_code
        == 200
    )
    assert post(pki, URLS[0], pki.allowed).status_code == 429


def test_one_accepted_line_per_delivery(
    drf: None, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    post(pki, URLS[0], pki.allowed)
    decisions = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert [r.hookshield["outcome"] for r in decisions] == ["accepted"]  # type: ignore[attr-defined]
