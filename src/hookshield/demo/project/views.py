"""The same business webhook twice: as it is often written, and behind ``@webhook``."""

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hookshield.django import webhook

PAYMENTS: list[dict[str, Any]] = []


def record_payment(event: dict[str, Any]) -> dict[str, Any]:
    """The business logic both endpoints share."""
    PAYMENTS.append(event)
    return {"recorded": event.get("type"), "payments": len(PAYMENTS)}


@csrf_exempt
def naive_payment(request: HttpRequest) -> JsonResponse:
    # Any caller, any method, any body; parses whatever arrives and echoes it back.
    event = json.loads(request.read())
    return JsonResponse({**record_payment(event), "echo": event})


@webhook("payments")
def shielded_payment(request: HttpRequest) -> JsonResponse:
    # Only the payments gateway, at its rate, with a valid signed JSON body, once per id.
    return JsonResponse(record_payment(request.webhook.json))  # type: ignore[attr-defined]
