"""What is particular to DRF views (the matrix in test_parity covers every protection on them)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config

DRF_URLS = ["/drf/payments/", "/drf/payments-generic/", "/drf/payments-viewset/"]


@pytest.fixture
def drf(settings: Any, pki: TestPki) -> None:
    settings.ROOT_URLCONF = "tests.urls_drf"
    settings.REST_FRAMEWORK = {
        "DEFAULT_RENDERER_CLASSES": [
            "rest_framework.renderers.JSONRenderer",
            "rest_framework.renderers.BrowsableAPIRenderer",
        ],
    }
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "RATE": "3/minute"}}
    )


def post(pki: TestPki, url: str, cert: Any = None, **headers: str) -> Any:
    if cert is not None:
        headers["X-SSL-Client-Cert"] = encodings.nginx_escaped(cert.certificate)
        headers["X-SSL-Client-Verify"] = "SUCCESS"
    return Client(REMOTE_ADDR="127.0.0.1").post(
        url, data=b'{"type": "paid"}', content_type="application/json", headers=headers
    )


@pytest.mark.usefixtures("drf")
@pytest.mark.parametrize("url", DRF_URLS)
def test_drf_sees_the_caller_the_guard_accepted(pki: TestPki, url: str) -> None:
    seen = post(pki, url, pki.allowed).json()["drf_data"]
    assert seen == {"caller": ALLOWED, "spiffe_id": ALLOWED, "data": {"type": "paid"}}


@pytest.mark.usefixtures("drf")
@pytest.mark.parametrize("url", DRF_URLS)
def test_refusals_are_json_whatever_renderer_the_client_asks_for(pki: TestPki, url: str) -> None:
    response = post(pki, url, pki.other, Accept="text/html")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "identity_not_allowed"


@pytest.mark.usefixtures("drf")
def test_drf_views_and_function_views_share_one_rate_budget(pki: TestPki) -> None:
    assert post(pki, "/drf/payments/", pki.allowed).status_code == 200
    assert post(pki, "/drf/payments-viewset/", pki.allowed).status_code == 200
    assert post(pki, "/hooks/payments/", pki.allowed).status_code == 200
    assert post(pki, "/drf/payments-generic/", pki.allowed).status_code == 429


@pytest.mark.usefixtures("drf")
def test_a_view_listing_webhook_authentication_without_the_guard_fails_closed(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookshield")
    for accept in ("application/json", "text/html"):
        response = post(pki, "/drf/unguarded/", pki.allowed, Accept=accept)
        assert response.status_code == 503
        assert response["Content-Type"] == "application/json"  # as the guard refuses
        assert response.json()["error"]["code"] == "guard_unavailable"
        assert response["Retry-After"] == "60"
        assert response["Cache-Control"] == "no-store"
    lines = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert [line.levelno for line in lines] == [logging.ERROR] * 2
    assert "Unguarded" in lines[0].getMessage()


@pytest.mark.usefixtures("drf")
def test_the_unguarded_refusal_needs_no_rest_framework_app(settings: Any, pki: TestPki) -> None:
    # The browsable API's HTML needs rest_framework's templates; the refusal is JSON anyway.
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "rest_framework"]
    response = post(pki, "/drf/unguarded/", pki.allowed, Accept="text/html")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "guard_unavailable"


def test_drf_s_own_user_throttle_and_admin_permission_work_on_the_caller(pki: TestPki) -> None:
    from rest_framework.permissions import IsAdminUser
    from rest_framework.throttling import UserRateThrottle

    from hookshield.core.identity import ClientIdentity
    from hookshield.django.drf import WebhookCaller

    caller = WebhookCaller(ClientIdentity.from_certificate(pki.allowed.certificate))
    request: Any = type("Request", (), {"user": caller})()
    view: Any = None
    assert UserRateThrottle().get_cache_key(request, view) == f"throttle_user_{ALLOWED}"
    assert IsAdminUser().has_permission(request, view) is False
