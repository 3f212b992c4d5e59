"""DRF views guarded by ``@webhook``: an APIView, a generic view and a viewset."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework import generics, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hookshield.core.identity import ClientIdentity
from hookshield.django import webhook
from hookshield.django.drf import WebhookAuthentication
from tests.urls import echo


def seen_by_drf(request: Request) -> dict[str, Any]:
    identity = request.auth
    assert isinstance(identity, ClientIdentity)
    return {"caller": str(request.user), "spiffe_id": identity.spiffe_id, "data": request.data}


@webhook("payments")
class PaymentEvents(APIView):
    authentication_classes = (WebhookAuthentication,)
    permission_classes = (IsAuthenticated,)

    def post(self, request: Request) -> Any:
        return echo(request._request, data=seen_by_drf(request))


@webhook("payments")
class PaymentsGeneric(generics.GenericAPIView):  # type: ignore[type-arg]
    authentication_classes = (WebhookAuthentication,)
    permission_classes = (IsAuthenticated,)

    def post(self, request: Request) -> Any:
        return echo(request._request, data=seen_by_drf(request))


@webhook("payments")
class PaymentsViewSet(viewsets.ViewSet):
    authentication_classes = (WebhookAuthentication,)
    permission_classes = (IsAuthenticated,)

    def create(self, request: Request) -> Any:
        return echo(request._request, data=seen_by_drf(request))


class Unguarded(APIView):
    """Lists WebhookAuthentication but forgot @webhook: must fail closed."""

    authentication_classes = (WebhookAuthentication,)

    def post(self, request: Request) -> Response:
        return Response({"reached": True})


urlpatterns: list[Any] = [
    path("drf/payments/", PaymentEvents.as_view()),
    path("drf/payments-generic/", PaymentsGeneric.as_view()),
    path("drf/payments-viewset/", PaymentsViewSet.as_view({"post": "create"})),
    path("drf/unguarded/", Unguarded.as_view()),
    path("", include("tests.urls")),
]
