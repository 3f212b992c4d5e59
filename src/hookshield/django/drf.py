"""Django REST framework classes on the same guard (install the ``drf`` extra).

    class PaymentEvents(APIView):
        authentication_classes = [WebhookAuthentication]
        permission_classes = [webhook_permission("payments")]
        throttle_classes = [webhook_throttle("payments")]

``WebhookAuthentication`` takes and verifies the client certificate (request.auth is the
``ClientIdentity``, request.user a ``WebhookCaller``); the permission applies the endpoint's
``ALLOW`` list, the throttle its ``RATE`` on the same limiter and keys as ``@webhook``. Refusals
are DRF exceptions carrying hookshield's stable code (``exc.get_codes()``), rendered by DRF's
exception handler. Input rules and signatures are ``@webhook``'s: DRF parses bodies itself.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from hookshield.core.audit import log_decision
from hookshield.core.errors import Code, Rejection
from hookshield.core.identity import ClientIdentity
from hookshield.core.pipeline import Guard, reject, unknown_endpoint
from hookshield.core.sources import Inbound
from hookshield.django.guard import forget_proxy_secret, get_guard, inbound_of

__all__ = [
    "WebhookAuthentication",
    "WebhookCaller",
    "WebhookPermission",
    "WebhookRateThrottle",
    "webhook_permission",
    "webhook_throttle",
]


class WebhookCaller:
    """``request.user`` for a certificate-authenticated service (not a Django user)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, identity: ClientIdentity) -> None:
        self.identity = identity

    def __str__(self) -> str:
        return self.identity.name


def _guard(request: HttpRequest, endpoint: str) -> Guard:
    guard = get_guard()
    if isinstance(guard, Rejection):
        forget_proxy_secret(request, guard)
        reject(inbound_of(request), endpoint, guard, level=logging.ERROR)
        raise AuthenticationFailed(guard.message, code=str(guard.code))
    return guard


def _endpoint(holder: Any, view: Any) -> str:
    name = getattr(holder, "endpoint", None) or getattr(view, "hookshield_endpoint", None)
    if not isinstance(name, str):
        raise PermissionDenied(
            "This view names no hookshield endpoint.", code=str(Code.GUARD_UNAVAILABLE)
        )
    return name


class WebhookAuthentication(BaseAuthentication):
    """The source and verify steps: a verified client certificate, or 401."""

    def authenticate(self, request: Request) -> tuple[WebhookCaller, ClientIdentity]:
        django_request = request._request
        view = request.parser_context.get("view") if request.parser_context else None
        endpoint = getattr(view, "hookshield_endpoint", None) or "drf"
        guard = _guard(django_request, endpoint)
        inbound = inbound_of(django_request)
        try:
            chain = guard.take_certificate(inbound)
            verified = chain if isinstance(chain, Rejection) else guard.verifier.verify(chain)
        finally:
            forget_proxy_secret(django_request, guard)
        if isinstance(verified, Rejection):
            reject(inbound, endpoint, verified)
            raise AuthenticationFailed(verified.message, code=str(verified.code))
        return WebhookCaller(verified.identity), verified.identity

    def authenticate_header(self, request: Request) -> str:
        return 'MutualTLS realm="webhooks"'  # makes DRF answer 401 rather than 403


class WebhookPermission(BasePermission):
    """The policy step: the identity must be in the endpoint's ALLOW (else 403)."""

    endpoint: str | None = None

    def has_permission(self, request: Request, view: Any) -> bool:
        identity = request.auth
        if not isinstance(identity, ClientIdentity):
            return False  # not authenticated by WebhookAuthentication
        endpoint = _endpoint(self, view)
        guard = _guard(request._request, endpoint)
        inbound = inbound_of(request._request)
        policy = guard.endpoints.get(endpoint)
        if policy is None:
            reject(inbound, endpoint, unknown_endpoint(endpoint), identity, logging.ERROR)
            raise PermissionDenied(
                "This webhook is not configured.", code=str(Code.GUARD_UNAVAILABLE)
            )
        matched = policy.allow.match(identity)
        if matched is None:
            refused = Rejection(Code.IDENTITY_NOT_ALLOWED, "identity matches no ALLOW entry")
            reject(inbound, endpoint, refused, identity)
            raise PermissionDenied(refused.message, code=str(refused.code))
        request.hookshield_matched = matched  # type: ignore[attr-defined]
        throttled = any(isinstance(t, WebhookRateThrottle) for t in view.get_throttles())
        if not throttled:  # otherwise the throttle logs the decision, once
            _accepted(inbound, endpoint, identity, matched)
        return True


class WebhookRateThrottle(BaseThrottle):
    """The limits step: the endpoint's RATE per identity, on the guard's own limiter."""

    endpoint: str | None = None

    def __init__(self) -> None:
        self._retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        identity = request.auth
        if not isinstance(identity, ClientIdentity):
            return True  # unauthenticated requests are refused by authentication, not here
        endpoint = _endpoint(self, view)
        guard = _guard(request._request, endpoint)
        policy = guard.endpoints.get(endpoint)
        if policy is None or not policy.rates:
            _accepted(inbound_of(request._request), endpoint, identity, identity.name)
            return True
        key = getattr(request, "hookshield_matched", None) or identity.name
        inbound = inbound_of(request._request)
        refused = guard.limiter.hit(endpoint, key, policy.rates)
        if refused is None:
            _accepted(inbound, endpoint, identity, key)
            return True
        reject(inbound, endpoint, refused, identity)
        retry = dict(refused.headers).get("Retry-After")
        self._retry_after = float(retry) if retry else None
        return False

    def wait(self) -> float | None:
        return self._retry_after


def _accepted(inbound: Inbound, endpoint: str, identity: ClientIdentity, matched: str) -> None:
    log_decision(
        endpoint=endpoint,
        outcome="accepted",
        code=None,
        reason=f"matched {matched}",
        identity=identity,
        peer=inbound.peer,
    )


def webhook_permission(endpoint: str) -> type[WebhookPermission]:
    """A ``WebhookPermission`` bound to ``endpoint``."""
    return type(f"WebhookPermission_{endpoint}", (WebhookPermission,), {"endpoint": endpoint})


def webhook_throttle(endpoint: str) -> type[WebhookRateThrottle]:
    """A ``WebhookRateThrottle`` bound to ``endpoint``."""
    return type(f"WebhookRateThrottle_{endpoint}", (WebhookRateThrottle,), {"endpoint": endpoint})
