"""``@webhook("name")``: the view runs only for the identities the endpoint allows."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from hookshield.core.errors import Rejection
from hookshield.core.pipeline import Accepted
from hookshield.django.guard import check_request, guard_does_io, release
from hookshield.django.responses import rejection_response

__all__ = ["webhook"]

View = TypeVar("View", bound=Callable[..., Any])
Result = TypeVar("Result")


def webhook(endpoint: str) -> Callable[[View], View]:
    """Guard a function view (sync or async); for class-based views use ``method_decorator``.

    The view receives ``request.webhook`` (the accepted delivery: identity, parsed JSON, delivery
    id). The guarded view, and only it, is CSRF-exempt: its callers are machines authenticated by
    their certificate, not browsers. When the view fails (an exception or a 5xx), a signed
    delivery's id is released so the sender's retry is not refused as a replay.
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise TypeError("webhook() takes the endpoint's name, e.g. @webhook('payments')")

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):
            async_view = cast(Callable[..., Awaitable[HttpResponseBase]], view)

            async def guarded_async(
                request: HttpRequest, *args: Any, **kwargs: Any
            ) -> HttpResponseBase:
                result = await _off_the_loop(check_request, request, endpoint)
                if isinstance(result, Rejection):
                    return rejection_response(result)
                request.webhook = result  # type: ignore[attr-defined]
                try:
                    response = await async_view(request, *args, **kwargs)
                except BaseException:
                    await _off_the_loop(release, result)
                    raise
                if response.status_code >= 500:
                    await _off_the_loop(release, result)
                return response

            guarded: Callable[..., Any] = guarded_async
        else:

            def guarded_sync(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
                result = check_request(request, endpoint)
                if isinstance(result, Rejection):
                    return rejection_response(result)
                request.webhook = result  # type: ignore[attr-defined]
                try:
                    response = cast(HttpResponseBase, view(request, *args, **kwargs))
                except BaseException:
                    release(result)
                    raise
                return _released_on_failure(response, result)

            guarded = guarded_sync
        functools.update_wrapper(guarded, view)
        # Set after update_wrapper, which copies the view's __dict__ over ours.
        guarded.hookshield_endpoint = endpoint  # type: ignore[attr-defined]
        guarded.csrf_exempt = True  # type: ignore[attr-defined]
        return cast(View, guarded)

    return decorate


async def _off_the_loop(step: Callable[..., Result], *args: Any) -> Result:
    """Run a guard step in a worker thread when it talks to Redis or a network cache."""
    if guard_does_io():
        return await sync_to_async(step, thread_sensitive=False)(*args)
    return step(*args)


def _released_on_failure(response: HttpResponseBase, accepted: Accepted) -> HttpResponseBase:
    if response.status_code >= 500:
        release(accepted)
    return response
