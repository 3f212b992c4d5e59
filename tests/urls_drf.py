"""DRF views guarded by hookshield's authentication, permission and throttle classes."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hookshield.core.identity import ClientIdentity
from hookshield.django.drf import (
    WebhookAuthentication,
    WebhookPermission,
    WebhookRateThrottle,
    webhook_permission,
    webhook_throttle,
)


class PaymentEvents(APIView):
    authentication_classes = (WebhookAuthentication,)
    permission_classes = (webhook_permission("payments"),)
    throttle_classes = (webhook_throttle("payments"),)

    def post(self, request: Request) -> Response:
        identity = request.auth
        assert isinstance(identity, ClientIdentity)
        return Response(
            {"caller": str(request.user), "spiffe_id": identity.spiffe_id, "data": request.data}
        )


class ByAttribute(APIView):
    """The endpoint named once on the view, read by the generic classes."""

    hookshield_endpoint = "payments"
    authentication_classes = (WebhookAuthentication,)
    permission_classes = (WebhookPermission,)
    throttle_classes = (WebhookRateThrottle,)

    def post(self, request: Request) -> Response:
        return Response({"caller": str(request.user)})


urlpatterns: list[Any] = [
    path("drf/payments/", PaymentEvents.as_view()),
    path("drf/by-attribute/", ByAttribute.as_view()),
    path("", include("tests.urls")),
]
