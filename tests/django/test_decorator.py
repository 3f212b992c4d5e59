from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from django.test import Client, RequestFactory

from hookshield.core.errors import Rejection
from hookshield.django.guard import check_request
from hookshield.pki import encodings
from tests.conftest import ALLOWED, VIA_INTERMEDIATE, TestPki, guard_config

URLS = ["/hooks/payments/", "/hooks/payments-async/", "/hooks/payments-cbv/"]
SECRET = "decorator-tests-proxy-secret-000"


def headers_for(cert: Any, verdict: str = "SUCCESS", **extra: str) -> dict[str, str]:
    return {
        "X-SSL-Client-Cert": encodings.nginx_escaped(cert),
        "X-SSL-Client-Verify": verdict,
        **extra,
    }


def post(url: str, headers: dict[str, str], *, peer: str = "127.0.0.1", csrf: bool = True) -> Any:
    client = Client(enforce_csrf_checks=csrf, REMOTE_ADDR=peer)
    return client.post(
        url, data=b'{"event": "paid"}', content_type="application/json", headers=headers
    )


def error_code(response: Any) -> str:
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


@pytest.mark.parametrize("url", URLS)
def test_allowed_identity_reaches_the_view(guarded: dict[str, Any], pki: TestPki, url: str) -> None:
    response = post(url, headers_for(pki.allowed.certificate))
    assert response.status_code == 200
    body = response.json()
    assert body["identity"] == ALLOWED
    assert body["matched"] == ALLOWED
    assert body["endpoint"] == "payments"


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize(
    ("which", "status", "code"),
    [
        ("other", 403, "identity_not_allowed"),
        ("rogue", 401, "client_cert_untrusted"),
        ("foreign", 401, "client_cert_untrusted"),
        ("expired", 401, "client_cert_expired"),
    ],
)
def test_refusals_are_json_with_stable_codes(
    guarded: dict[str, Any], pki: TestPki, url: str, which: str, status: int, code: str
) -> None:
    response = post(url, headers_for(getattr(pki, which).certificate))
    assert response.status_code == status
    assert error_code(response) == code
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("url", URLS)
def test_no_certificate_is_401(guarded: dict[str, Any], url: str) -> None:
    response = post(url, {})
    assert response.status_code == 401
    assert error_code(response) == "client_cert_missing"
    assert "WWW-Authenticate" in response


def test_a_failed_proxy_verdict_is_401(guarded: dict[str, Any], pki: TestPki) -> None:
    response = post(URLS[0], headers_for(pki.rogue.certificate, "FAILED:self-signed certificate"))
    assert response.status_code == 401
    assert error_code(response) == "client_cert_unverified"


def test_a_malformed_header_is_401_not_500(guarded: dict[str, Any]) -> None:
    response = post(
        URLS[0], {"X-SSL-Client-Cert": "%ZZ%00garbage", "X-SSL-Client-Verify": "SUCCESS"}
    )
    assert response.status_code == 401
    assert error_code(response) == "client_cert_malformed"


def test_headers_from_an_untrusted_peer_are_not_believed(
    guarded: dict[str, Any], pki: TestPki
) -> None:
    response = post(URLS[0], headers_for(pki.allowed.certificate), peer="192.0.2.10")
    assert response.status_code == 401
    assert error_code(response) == "client_cert_missing"


def test_intermediate_chain_via_configured_intermediates(
    settings: Any, pki: TestPki, tmp_path: Any
) -> None:
    intermediate = tmp_path / "intermediate.pem"
    intermediate.write_bytes(pki.intermediate.cert_pem)
    settings.HOOKSHIELD = guard_config(pki, INTERMEDIATES=[str(intermediate)])
    response = post(URLS[0], headers_for(pki.via_intermediate.certificate))
    assert response.status_code == 200
    assert response.json()["identity"] == VIA_INTERMEDIATE


def test_revoked_certificate_with_crls(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(
        pki, CRLS=[str(pki.crl_file), str(pki.intermediate_crl_file)]
    )
    assert post(URLS[0], headers_for(pki.allowed.certificate)).status_code == 200
    response = post(URLS[0], headers_for(pki.revoked.certificate))
    assert response.status_code == 401
    assert error_code(response) == "client_cert_revoked"


def test_long_lived_reject(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, LONG_LIVED="reject", MAX_CERT_LIFETIME_DAYS=90)
    response = post(URLS[0], headers_for(pki.long_lived.certificate))
    assert response.status_code == 401
    assert error_code(response) == "client_cert_too_long_lived"


def test_long_lived_warn_accepts_and_logs_a_warning(
    settings: Any, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    settings.HOOKSHIELD = guard_config(pki, MAX_CERT_LIFETIME_DAYS=90)
    caplog.set_level(logging.INFO, logger="hookshield")
    assert post(URLS[0], headers_for(pki.long_lived.certificate)).status_code == 200
    (record,) = [r for r in caplog.records if r.name == "hookshield.guard"]
    assert record.levelno == logging.WARNING
    assert "long-lived" in record.getMessage()


def test_a_long_lived_acceptance_stays_a_warning_with_accepted_lines_at_debug(
    settings: Any, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    settings.HOOKSHIELD = guard_config(pki, MAX_CERT_LIFETIME_DAYS=90, ACCEPTED_LOG_LEVEL="DEBUG")
    caplog.set_level(logging.INFO, logger="hookshield")
    assert post(URLS[0], headers_for(pki.allowed.certificate)).status_code == 200
    assert post(URLS[0], headers_for(pki.long_lived.certificate)).status_code == 200
    (record,) = [r for r in caplog.records if r.name == "hookshield.guard"]  # at INFO: one
    assert record.levelno == logging.WARNING
    assert "long-lived" in record.getMessage()


def test_proxy_secret_is_required_and_hidden_from_the_view(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, PROXY_SECRET=[SECRET, "another-secret-for-rotation-1"])
    refused = post(URLS[0], headers_for(pki.allowed.certificate))
    assert refused.status_code == 401
    assert error_code(refused) == "client_cert_missing"
    accepted = post(
        URLS[0], headers_for(pki.allowed.certificate, **{"X-Hookshield-Proxy-Secret": SECRET})
    )
    assert accepted.status_code == 200
    assert accepted.json()["secret_header_visible"] is False


def test_the_proxy_secret_is_gone_from_headers_read_before_the_guard(
    settings: Any, pki: TestPki
) -> None:
    # A middleware (CORS, say) may have read request.headers, which Django makes once and keeps;
    # under ASGI the server's scope holds the headers too.
    from django.test import AsyncRequestFactory

    from tests.urls import payments, payments_async

    settings.HOOKSHIELD = guard_config(pki, PROXY_SECRET=[SECRET])
    headers = headers_for(pki.allowed.certificate, **{"X-Hookshield-Proxy-Secret": SECRET})
    body, kind = b'{"type": "paid"}', "application/json"
    request = RequestFactory(REMOTE_ADDR="127.0.0.1").post(
        URLS[0], body, content_type=kind, headers=headers
    )
    assert request.headers["X-Hookshield-Proxy-Secret"] == SECRET  # read before the guard
    seen = json.loads(payments(request).content)
    assert seen["identity"] == ALLOWED
    assert seen["secret_header_visible"] is False
    asgi = AsyncRequestFactory(REMOTE_ADDR="127.0.0.1").post(
        URLS[1], body, content_type=kind, headers=headers
    )
    server_headers = asgi.scope["headers"]  # as an ASGI middleware around Django holds it
    assert isinstance(server_headers, list)
    assert any(name == b"x-hookshield-proxy-secret" for name, _ in server_headers)
    assert asgi.headers["X-Hookshield-Proxy-Secret"] == SECRET
    seen = json.loads(asyncio.run(payments_async(asgi)).content)
    assert seen["identity"] == ALLOWED
    assert seen["secret_header_visible"] is False
    assert not any(name == b"x-hookshield-proxy-secret" for name, _ in server_headers)
    assert any(name == b"content-type" for name, _ in server_headers)  # the others stay


def test_rejections_stay_json_under_debug(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki)
    settings.DEBUG = True
    response = post(URLS[0], headers_for(pki.other.certificate))
    assert response.status_code == 403
    assert error_code(response) == "identity_not_allowed"
    assert b"Traceback" not in response.content


def test_unreadable_trust_anchors_give_503_json(settings: Any, pki: TestPki, tmp_path: Any) -> None:
    settings.HOOKSHIELD = guard_config(pki, TRUST_ANCHORS=[str(tmp_path / "missing.pem")])
    response = post(URLS[0], headers_for(pki.allowed.certificate))
    assert response.status_code == 503
    assert error_code(response) == "guard_unavailable"
    assert response["Retry-After"] == "60"


def test_proxy_secret_is_dropped_while_the_guard_is_unavailable(
    settings: Any, pki: TestPki, tmp_path: Any
) -> None:
    # Django reports the 503 with the request attached: the secret must be gone from it too.
    settings.HOOKSHIELD = guard_config(
        pki,
        TRUST_ANCHORS=[str(tmp_path / "missing.pem")],
        PROXY_SECRET=SECRET,
        PROXY_SECRET_HEADER="X-Edge-Token",
    )
    request = RequestFactory().post("/hooks/", headers={"X-Edge-Token": SECRET})
    refused = check_request(request, "payments")
    assert isinstance(refused, Rejection)
    assert refused.code == "guard_unavailable"
    assert "HTTP_X_EDGE_TOKEN" not in request.META


def test_a_body_cut_off_by_the_client_is_a_400(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki)

    class Cut:
        def read(self, size: int = -1) -> bytes:
            raise OSError("connection reset by peer")

    request = RequestFactory().post(
        "/hooks/",
        data=b"{}",
        content_type="application/json",
        headers=headers_for(pki.allowed.certificate),
        REMOTE_ADDR="127.0.0.1",
    )
    request._stream = Cut()  # type: ignore[assignment]
    refused = check_request(request, "payments")
    assert isinstance(refused, Rejection)
    assert refused.status == 400
    assert refused.code == "malformed_body"


def test_only_guarded_views_are_csrf_exempt(guarded: dict[str, Any], pki: TestPki) -> None:
    plain = post("/plain/", {}, csrf=True)
    assert plain.status_code == 403  # Django's CSRF failure: the plain view is still protected
    assert post("/plain/", {}, csrf=False).status_code == 200
    assert post(URLS[0], headers_for(pki.allowed.certificate), csrf=True).status_code == 200


def test_the_decorator_marks_the_view() -> None:
    from tests import urls

    assert urls.payments.hookshield_endpoint == "payments"  # type: ignore[attr-defined]
    assert urls.payments.csrf_exempt is True  # type: ignore[attr-defined]
    assert urls.payments.__name__ == "payments"
    cbv = urls.PaymentsView.as_view()
    assert cbv.csrf_exempt is True  # type: ignore[attr-defined]
    assert cbv.hookshield_endpoint == "payments"  # type: ignore[attr-defined]


def test_decorator_needs_a_name() -> None:
    from hookshield.django import webhook

    with pytest.raises(TypeError, match="endpoint's name"):
        webhook(lambda request: None)  # type: ignore[arg-type]


def test_async_views_stay_async() -> None:
    from asgiref.sync import iscoroutinefunction

    from tests import urls

    assert iscoroutinefunction(urls.payments_async)
    assert not iscoroutinefunction(urls.payments)


async def test_async_client_on_the_async_view(guarded: dict[str, Any], pki: TestPki) -> None:
    from django.test import AsyncClient

    client = AsyncClient(REMOTE_ADDR="127.0.0.1")
    for cert, status in ((pki.allowed, 200), (pki.other, 403)):
        response = await client.post(
            URLS[1],
            data=b"{}",
            content_type="application/json",
            headers=headers_for(cert.certificate),
        )
        assert response.status_code == status


async def asgi_post(path: str, *, tls: dict[str, Any] | None, headers: dict[str, str]) -> int:
    """Drive Django's ASGI handler with the scope a TLS-terminating ASGI server would send."""
    from django.core.asgi import get_asgi_application

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 443),
        "headers": [
            (b"content-type", b"application/json"),
            (b"host", b"testserver"),
            *((k.lower().encode(), v.encode("latin1")) for k, v in headers.items()),
        ],
        "extensions": {} if tls is None else {"tls": tls},
    }
    messages: list[Mapping[str, Any]] = []
    body = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if body:
            return body.pop(0)
        # The client stays connected: Django 5 aborts a request whose client disconnects.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Mapping[str, Any]) -> None:
        messages.append(message)

    await get_asgi_application()(scope, receive, send)
    starts = [m for m in messages if m["type"] == "http.response.start"]
    assert starts, messages
    return int(starts[0]["status"])


@pytest.mark.parametrize("url", URLS)
async def test_asgi_tls_source_reads_the_scope(settings: Any, pki: TestPki, url: str) -> None:
    settings.HOOKSHIELD = guard_config(pki, CERT_SOURCE="asgi-tls", TRUSTED_PROXIES=[])
    for cert, status in ((pki.allowed, 200), (pki.other, 403), (pki.rogue, 401)):
        tls = {
            "client_cert_chain": [encodings.pem(cert.certificate)],
            "client_cert_error": None,
            "server_cert": None,
            "tls_version": 0x0304,
            "cipher_suite": 0x1301,
        }
        assert await asgi_post(url, tls=tls, headers={}) == status
    # Headers are no way in for this source, whoever sends them.
    forged = headers_for(pki.allowed.certificate)
    assert await asgi_post(url, tls=None, headers=forged) == 401


def test_the_default_source_under_wsgi_says_why_every_delivery_is_refused(
    settings: Any, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    config = guard_config(pki)
    del config["CERT_SOURCE"]  # asgi-tls, while the test client is a WSGI server
    settings.HOOKSHIELD = config
    caplog.set_level(logging.INFO, logger="hookshield")
    for _ in range(2):
        response = post(URLS[0], headers_for(pki.allowed.certificate))
        assert response.status_code == 401
        assert error_code(response) == "client_cert_missing"
    decisions = [r.hookshield for r in caplog.records if r.name == "hookshield.guard"]  # type: ignore[attr-defined]
    assert all("came through a WSGI server" in d["reason"] for d in decisions)
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "set HOOKSHIELD['CERT_SOURCE']" in error.getMessage()


def test_a_class_is_guarded_once() -> None:
    from django.views import View

    from hookshield.django import webhook

    @webhook("payments")
    class Base(View):
        pass

    with pytest.raises(TypeError, match=r"Sub is already guarded by @webhook\('payments'\)"):

        @webhook("payments")
        class Sub(Base):
            pass

    with pytest.raises(TypeError, match="decorates a view function or a View class"):
        webhook("payments")(type("NotAView", (), {}))


def _class_views() -> tuple[Any, Any]:
    """A guarded sync class, and subclasses that would each have broken a dispatch-level guard."""
    from django.http import JsonResponse
    from django.views import View

    from hookshield.django import webhook

    @webhook("payments")
    class Base(View):
        def post(self, request: Any) -> Any:
            return JsonResponse({"identity": request.webhook.identity.name})

    class AsyncChild(Base):
        async def post(self, request: Any) -> Any:
            return JsonResponse({"identity": request.webhook.identity.name})

    class OwnDispatch(Base):
        def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            return JsonResponse({"reached": True, "guarded": hasattr(request, "webhook")})

    return AsyncChild, OwnDispatch


async def test_a_subclass_with_async_handlers_of_a_guarded_class_is_guarded_as_async(
    settings: Any, pki: TestPki
) -> None:
    from django.test import AsyncRequestFactory

    settings.HOOKSHIELD = guard_config(pki)
    async_child, _ = _class_views()
    view = async_child.as_view()
    factory = AsyncRequestFactory()
    request = factory.post(
        "/x/",
        data=b"{}",
        content_type="application/json",
        headers=headers_for(pki.allowed.certificate),
    )
    response = await view(request)
    assert response.status_code == 200
    assert json.loads(response.content) == {"identity": ALLOWED}
    refused = await view(factory.post("/x/", data=b"{}", content_type="application/json"))
    assert refused.status_code == 401


def test_a_subclass_that_overrides_dispatch_cannot_step_around_the_guard(
    settings: Any, pki: TestPki
) -> None:
    settings.HOOKSHIELD = guard_config(pki)
    _, own_dispatch = _class_views()
    view = own_dispatch.as_view()
    factory = RequestFactory(REMOTE_ADDR="127.0.0.1")
    refused = view(factory.post("/x/", data=b"{}", content_type="application/json"))
    assert refused.status_code == 401
    assert error_code(refused) == "client_cert_missing"
    accepted = view(
        factory.post(
            "/x/",
            data=b"{}",
            content_type="application/json",
            headers=headers_for(pki.allowed.certificate),
        )
    )
    assert json.loads(accepted.content) == {"reached": True, "guarded": True}
    assert view.csrf_exempt is True  # the mark is on what as_view() returns, whatever dispatch is


@pytest.mark.parametrize("url", URLS)
def test_a_bug_in_a_guard_step_is_a_loud_400_never_a_500_or_an_acceptance(
    settings: Any,
    pki: TestPki,
    url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hookshield.core.pipeline import Guard

    settings.HOOKSHIELD = guard_config(pki)

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Guard, "authorize", broken)
    caplog.set_level(logging.INFO, logger="hookshield")
    response = post(url, headers_for(pki.allowed.certificate))
    assert response.status_code == 400
    assert error_code(response) == "request_unprocessable"
    (bug,) = [r for r in caplog.records if r.exc_text]
    assert bug.levelno == logging.ERROR
    assert "RuntimeError: a bug" in str(bug.exc_text)  # the traceback (redacted, kept as text)
    lines = [r for r in caplog.records if r.name == "hookshield.guard" and hasattr(r, "hookshield")]
    assert [line.hookshield["code"] for line in lines] == ["request_unprocessable"]
