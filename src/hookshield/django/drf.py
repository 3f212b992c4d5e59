"""Django REST framework views on the same guard (install the ``drf`` extra).

    @webhook("payments")
    class PaymentEvents(APIView):
        authentication_classes = [WebhookAuthentication]
        permission_classes = [IsAuthenticated]

``@webhook`` on the class guards the view function its ``as_view()`` makes, before DRF sees
the request, exactly as it guards a function view: every protection (certificate, identity,
rate, input rules, signature, replay) answers with the same status, code and body, and each
decision is logged, counted and inventoried once. The same goes for generic views and
viewsets (decorate the ViewSet class).

``WebhookAuthentication`` decides nothing: it shows DRF the caller the guard accepted
(``request.user`` a ``WebhookCaller``, ``request.auth`` its ``ClientIdentity``), and refuses a
view that lists it but is not guarded, so a forgotten decorator fails closed.
"""

from __future__ import annotations

import logging

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from hookshield.core.errors import Code, Rejection
from hookshield.core.identity import ClientIdentity
from hookshield.core.pipeline import Webhook

__all__ = ["WebhookAuthentication", "WebhookCaller"]

logger = logging.getLogger("hookshield.guard")


class WebhookCaller:
    """``request.user`` for a certificate-authenticated service (not a Django user).

    It answers what DRF's own permission and throttle classes ask of a user: ``pk`` is the
    identity's name (so ``UserRateThrottle`` keys on the caller), and it is never staff.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, identity: ClientIdentity) -> None:
        self.identity = identity

    @property
    def pk(self) -> str:
        return self.identity.name

    def get_username(self) -> str:
        return self.identity.name

    def __str__(self) -> str:
        return self.identity.name


class _NotGuarded(APIException):
    status_code = 503

    def __init__(self) -> None:
        refused = Rejection.guard_unavailable("view is not guarded by @webhook")
        super().__init__(
            {"error": {"code": str(refused.code), "message": refused.message}},
            code=str(Code.GUARD_UNAVAILABLE),
        )
        self.wait = 60


class WebhookAuthentication(BaseAuthentication):
    """The caller ``@webhook`` accepted, as DRF's ``request.user`` and ``request.auth``."""

    def authenticate(self, request: Request) -> tuple[WebhookCaller, ClientIdentity]:
        accepted = getattr(request._request, "webhook", None)
        if not isinstance(accepted, Webhook):
            view = request.parser_context.get("view") if request.parser_context else None
            logger.error(
                "%s lists WebhookAuthentication but is not decorated with @webhook: refused",
                type(view).__name__ if view is not None else "a view",
            )
            # Refused as the guard refuses: JSON whatever renderer the client asked for (the
            # browsable API's HTML also needs rest_framework's templates), never cached.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
            if view is not None:  # DRF adds the view's headers to the response it makes
                view.headers = {**getattr(view, "headers", {}), "Cache-Control": "no-store"}
            raise _NotGuarded()
        return WebhookCaller(accepted.identity), accepted.identity

    def authenticate_header(self, request: Request) -> str:
        return 'MutualTLS realm="webhooks"'
