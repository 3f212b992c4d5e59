"""The integration project's URLs: the unit tests' views plus endpoints with every control on."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from hookshield.django import webhook
from tests.conftest import ALLOWED, GITHUB_SECRET


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


_own_command: list[Callable[[], Any]] = []


def _guard_own_command() -> Callable[[], Any]:
    """The script the guard sends for the ``limited`` endpoint's rate, by the guard's sender on
    its client, to a key of the reference's own: one per process, made on its first request."""
    if not _own_command:
        import limits

        from hookshield.core.redis_hit import hit_script
        from hookshield.core.redis_topology import keyed_script
        from hookshield.django.guard import get_guard

        guard = get_guard()
        storage = getattr(getattr(guard, "limiter", None), "redis", None)
        if storage is None:
            raise RuntimeError("round-trip reference: RATE_LIMIT_STORAGE is not a Redis URI")
        configured: dict[str, Any] = settings.HOOKSHIELD
        rate = limits.parse(configured["ENDPOINTS"]["limited"]["RATE"])
        script = keyed_script(storage, hit_script([(rate.amount, rate.get_expiry())], 0))
        keys = [storage.prefixed_key("throughput-round-trip-reference")]
        _own_command.append(lambda: script(keys, (time.time(),)))
    return _own_command[0]


@csrf_exempt
def unguarded_round_trip(request: HttpRequest) -> JsonResponse:
    """The unguarded handler plus the guard's own Redis command (the throughput benchmark's
    reference for one round trip): what the guarded Redis row costs beyond it is the guard's."""
    if isinstance(_guard_own_command()(), list):  # refused: the benchmark's rate is too low
        return JsonResponse({"error": "the reference command was refused"}, status=429)
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


@csrf_exempt
def cert_present(request: HttpRequest) -> JsonResponse:
    """Lets in whoever the proxy forwarded a certificate for: verified or not, any identity;
    and anyone at all with another method than POST ("GET is the health check")."""
    if request.method == "POST" and not request.META.get("HTTP_X_SSL_CLIENT_CERT"):
        return JsonResponse({"error": "client certificate required"}, status=401)
    return JsonResponse({"ok": True})


SPLIT_DN_CN = "payments-gateway"


@csrf_exempt
def split_dn(request: HttpRequest) -> JsonResponse:
    """Authorizes on the CNs of the subject DN nginx forwards, split on commas (common glue)."""
    if request.META.get("HTTP_X_SSL_CLIENT_VERIFY") != "SUCCESS":
        return JsonResponse({"error": "client certificate required"}, status=401)
    parts = (part.strip() for part in request.META.get("HTTP_X_SSL_CLIENT_S_DN", "").split(","))
    if SPLIT_DN_CN not in [part[3:] for part in parts if part.startswith("CN=")]:
        return JsonResponse({"error": "not allowed"}, status=403)
    return JsonResponse({"ok": True})


@csrf_exempt
def header_believer(request: HttpRequest) -> JsonResponse:
    """Takes the caller's SPIFFE ID from X-SSL-Client-Cert, else X-Client-Cert. nginx sets the
    first in another location only: here a client's own copy arrives untouched."""
    forwarded = request.META.get("HTTP_X_SSL_CLIENT_CERT") or request.META.get(
        "HTTP_X_CLIENT_CERT", ""
    )
    pem = unquote(forwarded)
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return JsonResponse({"error": "client certificate required"}, status=401)
    if ALLOWED not in sans.get_values_for_type(x509.UniformResourceIdentifier):
        return JsonResponse({"error": "not allowed"}, status=403)
    return JsonResponse({"ok": True})


@csrf_exempt
def github(request: HttpRequest) -> JsonResponse:
    """A GitHub-style receiver: X-Hub-Signature-256 over the body and an event name; it keeps
    no delivery ids, so a delivery sent again is accepted again."""
    expected = (
        "sha256=" + hmac.new(GITHUB_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    )
    if not hmac.compare_digest(request.headers.get("X-Hub-Signature-256", ""), expected):
        return JsonResponse({"error": "bad signature"}, status=401)
    if "X-GitHub-Event" not in request.headers:
        return JsonResponse({"error": "no event"}, status=400)
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
    path("hooks/cert-present/", cert_present),
    path("hooks/split-dn/", split_dn),
    path("hooks/believer/", header_believer),
    path("hooks/github/", github),
    path("hooks/unguarded/", unguarded),
    path("hooks/unguarded-round-trip/", unguarded_round_trip),
    path("hooks/limited/", limited),
    path("hooks/strict/", strict),
    path("hooks/by-name/<str:endpoint>/", any_endpoint),
    path("", include("tests.urls_drf")),  # the unit tests' views, DRF ones included
]
