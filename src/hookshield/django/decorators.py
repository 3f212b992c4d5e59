"""``@webhook("name")``: the view runs only for the identities the endpoint allows."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from hookshield.core.errors import Rejection
from hookshield.django.guard import check_request
from hookshield.django.responses import rejection_response

__all__ = ["webhook"]

View = TypeVar("View", bound=Callable[..., Any])


def webhook(endpoint: str) -> Callable[[View], View]:
    """Guard a function view (sync or async); for class-based views use ``method_decorator``.

    The view receives ``request.webhook`` (the accepted identity). The guarded view, and only it,
    is CSRF-exempt: its callers are machines authenticated by their certificate, not browsers.
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise TypeError("webhook() takes the endpoint's name, e.g. @webhook('payments')")

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):
            async_view = cast(Callable[..., Awaitable[HttpResponseBase]], view)

            async def guarded_async(
                request: HttpRequest, *args: Any, **kwargs: Any
            ) -> HttpResponseBase:
                result = check_request(request, endpoint)
                if isinstance(result, Rejection):
                    return rejection_response(result)
                request.webhook = result  # type: ignore[attr-defined]
                return await async_view(request, *args, **kwargs)

            guarded: Callable[..., Any] = guarded_async
        else:

            def guarded_sync(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
                result = check_request(request, endpoint)
                if isinstance(result, Rejection):
                    return rejection_response(result)
                request.webhook = result  # type: ignore[attr-defined]
                return cast(HttpResponseBase, view(request, *args, **kwargs))

            guarded = guarded_sync
        functools.update_wrapper(guarded, view)
        # Set after update_wrapper, which copies the view's __dict__ over ours.
        guarded.hookshield_endpoint = endpoint  # type: ignore[attr-defined]
        guarded.csrf_exempt = True  # type: ignore[attr-defined]
        return cast(View, guarded)

    return decorate
