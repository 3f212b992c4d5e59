"""The integration project's URLs: the unit tests' views plus endpoints with every control on."""

from __future__ import annotations

import json
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


@csrf_exempt
def unguarded(request: HttpRequest) -> JsonResponse:
    """The same handler with no guard: the throughput benchmark's baseline."""
    return JsonResponse({"type": json.loads(request.body).get("type")})


@csrf_exempt
def naive(request: HttpRequest) -> JsonResponse:
    """The webhook as it is often written: no identity check, parse and echo, no limits."""
    event = json.loads(request.body)  # a malformed body raises: a 500 (a debug page with DEBUG)
    return JsonResponse({"received": event})


urlpatterns: list[Any] = [
    path("hooks/naive/", naive),
    path("hooks/unguarded/", unguarded),
    path("hooks/limited/", limited),
    path("hooks/strict/", strict),
    path("", include("tests.urls")),
]
