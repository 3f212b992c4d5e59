"""The integration project's URLs: the unit tests' views plus endpoints with every control on."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from hookshield.django import webhook


@webhook("limited")
def limited(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@webhook("strict")
def strict(request: HttpRequest) -> JsonResponse:
    accepted = request.webhook  # type: ignore[attr-defined]
    return JsonResponse({"type": accepted.json.get("type"), "delivery_id": accepted.delivery_id})


urlpatterns: list[Any] = [
    path("hooks/limited/", limited),
    path("hooks/strict/", strict),
    path("", include("tests.urls")),
]
