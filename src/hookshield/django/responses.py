"""Rejections as JSON responses: ``{"error": {"code": ..., "message": ...}}``, never a traceback."""

from __future__ import annotations

from django.http import JsonResponse

from hookshield.core.errors import Rejection

__all__ = ["rejection_response"]


def rejection_response(rejection: Rejection) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": str(rejection.code), "message": rejection.message}},
        status=rejection.status,
    )
    response["Cache-Control"] = "no-store"
    if rejection.status == 401:
        # RFC 9110 asks a 401 to name a scheme; mutual TLS has no registered one, so say it plainly.
        response["WWW-Authenticate"] = 'MutualTLS realm="webhooks"'
    for name, value in rejection.headers:
        response[name] = value
    return response
