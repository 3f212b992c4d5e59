"""The integration project's URLs: the unit tests' views plus endpoints with every control on."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from hookshield.django import webhook


@webhook("limited")
def limited(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@webhook("strict")
def strict(request: HttpRequest) -> JsonResponse:
    accepted = request.webhook  # type: ignore[attr-defined]
    return JsonResponse({"type": accepted.json.get("type"), "delivery_id": accepted.delivery_id})


def _named(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"delivery_id": request.webhook.delivery_id})  # type: ignore[attr-defined]


_guarded_by_name: dict[str, Any] = {}


@csrf_exempt
def any_endpoint(request: HttpRequest, endpoint: str) -> Any:
    """Whichever endpoint the test's settings configure under this name: tests that choose
    names by the Redis Cluster slot their hash tag maps to."""
    view = _guarded_by_name.get(endpoint)
    if view is None:
        view = _guarded_by_name[endpoint] = webhook(endpoint)(_named)
    return view(request)


@csrf_exempt
def unguarded(request: HttpRequest) -> JsonResponse:
    """The same handler with no guard: the throughput benchmark's baseline."""
    return JsonResponse({"type": json.loads(request.body).get("type")})


@csrf_exempt
def naive(request: HttpRequest) -> JsonResponse:
    """The webhook as it is often written: no identity check, parse and echo, no limits."""
    # Reads the stream directly (no DATA_UPLOAD_MAX_MEMORY_SIZE); a malformed body raises: a 500,
    # a debug page with DEBUG on.
    event = json.loads(request.read())
    return JsonResponse({"received": event})


@csrf_exempt
def fallback(request: HttpRequest) -> JsonResponse:
    """Trusts the proxy's verdict, or a legacy header nobody overwrites (the FortiClient bug)."""
    verified = request.META.get("HTTP_X_SSL_CLIENT_VERIFY") == "SUCCESS"
    legacy = request.META.get("HTTP_X_CLIENT_CERT_CHAIN_VERIFIED") == "true"
    if not (verified or legacy):
        return JsonResponse({"error": "client certificate required"}, status=401)
    return JsonResponse({"ok": True})


_served = Counter[int]()


@csrf_exempt
def bare_limit(request: HttpRequest) -> JsonResponse:
    """Throttles after five deliveries per process, with a 429 that says nothing more."""
    _served[0] += 1
    if _served[0] > 5:
        return JsonResponse({"error": "slow down"}, status=429)
    return JsonResponse({"ok": True})


@csrf_exempt
def received_headers(request: HttpRequest) -> JsonResponse:
    """Every header that reached Django (for the proxy configuration tests)."""
    return JsonResponse({k: v for k, v in request.META.items() if k.startswith("HTTP_")})


def tls_scope(request: HttpRequest) -> JsonResponse:
    """What the server put in the ASGI TLS extension (for hookshield serve's tests)."""
    tls = dict(getattr(request, "scope", {}).get("extensions", {}).get("tls") or {})
    return JsonResponse(
        {k: v for k, v in tls.items() if k != "server_cert"}
        | {"has_server_cert": bool(tls.get("server_cert"))}
    )


urlpatterns: list[Any] = [
    path("tls-scope/", tls_scope),
    path("received-headers/", received_headers),
    path("hooks/fallback/", fallback),
    path("hooks/bare-limit/", bare_limit),
    path("hooks/naive/", naive),
    path("hooks/unguarded/", unguarded),
    path("hooks/limited/", limited),
    path("hooks/strict/", strict),
    path("hooks/by-name/<str:endpoint>/", any_endpoint),
    path("", include("tests.urls_drf")),  # the unit tests' views, DRF ones included
]
