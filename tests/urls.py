"""Views the tests call: the same webhook guarded as every kind of Django view."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View

from hookshield.django import webhook
from hookshield.django.metrics import metrics_view


def echo(request: HttpRequest, data: Any = None) -> JsonResponse:
    """What the view saw of the accepted delivery (``data``: what DRF parsed, if DRF)."""
    accepted = request.webhook  # type: ignore[attr-defined]
    payload = accepted.json
    if isinstance(payload, dict) and payload.get("raise"):
        raise RuntimeError("a broken handler")  # the view raises rather than answering
    return JsonResponse(
        {
            "endpoint": accepted.endpoint,
            "identity": accepted.identity.name,
            "matched": accepted.matched,
            "fingerprint": accepted.identity.fingerprint,
            "json": payload,
            "delivery_id": accepted.delivery_id,
            # The body stays readable for the view after the guard read it.
            "body_length": len(request.body),
            # What the view could see of the proxy secret (it must see nothing).
            "secret_header_visible": secret_visible(request),
            "drf_data": data,
        },
        # A payload asking for it makes the view fail, as a broken handler would.
        status=500 if isinstance(payload, dict) and payload.get("fail") else 200,
    )


def secret_visible(request: HttpRequest) -> bool:
    """Whether the proxy's secret header shows anywhere a view or a report could read it."""
    scope = getattr(request, "scope", None) or {}
    return (
        "HTTP_X_HOOKSHIELD_PROXY_SECRET" in request.META
        or "X-Hookshield-Proxy-Secret" in request.headers
        or any(name.lower() == b"x-hookshield-proxy-secret" for name, _ in scope.get("headers", ()))
    )


@webhook("payments")
def payments(request: HttpRequest) -> JsonResponse:
    return echo(request)


@webhook("payments")
async def payments_async(request: HttpRequest) -> JsonResponse:
    return echo(request)


@method_decorator(webhook("payments"), name="dispatch")
class PaymentsView(View):
    def post(self, request: HttpRequest) -> JsonResponse:
        return echo(request)


class FailingSetup(View):
    """A class view's ``setup`` and ``dispatch`` run inside the guarded call, synchronously even
    for an async view: a delivery can ask the first to raise, as a broken view's would."""

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        payload = request.webhook.json  # type: ignore[attr-defined]
        if isinstance(payload, dict) and payload.get("raise_in_setup"):
            raise RuntimeError("a broken setup")
        super().setup(request, *args, **kwargs)


@webhook("payments")
class PaymentsClassDecorated(FailingSetup):
    def post(self, request: HttpRequest) -> JsonResponse:
        return echo(request)


@webhook("payments")
class PaymentsAsyncView(FailingSetup):
    async def post(self, request: HttpRequest) -> JsonResponse:
        return echo(request)


@method_decorator(webhook("payments"), name="dispatch")
class PaymentsAsyncViewByMethod(View):
    async def post(self, request: HttpRequest) -> JsonResponse:
        return echo(request)


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain view reached")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics/", metrics_view),
    path("hooks/payments/", payments),
    path("hooks/payments-async/", payments_async),
    path("hooks/payments-cbv/", PaymentsView.as_view()),
    path("hooks/payments-class/", PaymentsClassDecorated.as_view()),
    path("hooks/payments-async-class/", PaymentsAsyncView.as_view()),
    path("hooks/payments-async-cbv/", PaymentsAsyncViewByMethod.as_view()),
    path("plain/", plain),
]
