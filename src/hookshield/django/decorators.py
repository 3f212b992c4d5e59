"""``@webhook("name")``: the view runs only for the identities the endpoint allows.

The one adapter between Django's views and the core guard: function views (sync and async),
class-based views (decorate the class, or its ``dispatch`` with ``method_decorator``) and Django
REST framework views and viewsets (decorate the class) all go through the same two wrappers
below, so every protection answers the same way on every kind of view.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from hookshield.core.errors import Rejection
from hookshield.core.pipeline import Webhook
from hookshield.django.conf import require_endpoint
from hookshield.django.guard import check_request, guard_does_io, release
from hookshield.django.responses import rejection_response

__all__ = ["webhook"]

View = TypeVar("View", bound=Callable[..., Any])
Result = TypeVar("Result")
SyncView = Callable[..., HttpResponseBase]
AsyncView = Callable[..., Awaitable[HttpResponseBase]]


def webhook(endpoint: str) -> Callable[[View], View]:
    """Guard a view: a function (sync or async) or a class-based view (Django, DRF, viewsets).

    The view receives ``request.webhook`` (a ``Webhook``: identity, parsed JSON, delivery id).
    The guarded view, and only it, is CSRF-exempt: its callers are machines authenticated by
    their certificate, not browsers. When the view fails (an exception or a 5xx), a signed
    delivery's id is released so the sender's retry is not refused as a replay.

    An endpoint name that ``HOOKSHIELD['ENDPOINTS']`` does not configure is refused here, when
    the URLconf is imported, rather than answered 503 at the first delivery.
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise TypeError("webhook() takes the endpoint's name, e.g. @webhook('payments')")
    require_endpoint(endpoint, f"@webhook({endpoint!r})")

    def decorate(view: View) -> View:
        if isinstance(view, type):
            return cast(View, _guard_class(view, endpoint))
        return cast(View, _guard_function(view, endpoint))

    return decorate


def _guard_function(view: Callable[..., Any], endpoint: str) -> Callable[..., Any]:
    guarded: Callable[..., Any] = (
        _guarded_async(view, endpoint) if _is_async(view) else _guarded_sync(view, endpoint)
    )
    functools.update_wrapper(guarded, view)
    # Set after update_wrapper, which copies the view's __dict__ (DRF's cls and initkwargs,
    # Django's view_class) over ours.
    guarded.hookshield_endpoint = endpoint  # type: ignore[attr-defined]
    guarded.csrf_exempt = True  # type: ignore[attr-defined]
    return guarded


def _is_async(view: Callable[..., Any]) -> bool:
    if iscoroutinefunction(view):
        return True
    # method_decorator hands over dispatch bound to the view instance, wrapped in a partial:
    # an async class-based view's dispatch is a plain function whose result Django awaits.
    bound = getattr(view, "func", None)
    return isinstance(view, functools.partial) and bool(
        getattr(getattr(bound, "__self__", None), "view_is_async", False)
    )


def _guard_class(cls: type, endpoint: str) -> type:
    """Guard the view function ``as_view()`` makes, for this class and its subclasses.

    Before ``dispatch``, so a subclass that overrides ``dispatch`` cannot step around the guard,
    and per concrete class, so a subclass with async handlers gets the async guard.
    """
    guarded_by = getattr(cls, "hookshield_endpoint", None)
    if guarded_by is not None:
        # A subclass of a guarded view inherits its guard; a second one would count every
        # delivery twice against the rate limits and the replay store.
        raise TypeError(
            f"{cls.__qualname__} is already guarded by @webhook({guarded_by!r}) "
            "(on it or on a base class)"
        )
    as_view = getattr(getattr(cls, "as_view", None), "__func__", None)
    if as_view is None:
        raise TypeError(f"@webhook({endpoint!r}) decorates a view function or a View class")

    def guarded_as_view(klass: type, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return _guard_function(as_view(klass, *args, **kwargs), endpoint)

    functools.update_wrapper(guarded_as_view, as_view)
    cls.as_view = classmethod(guarded_as_view)  # type: ignore[attr-defined]
    cls.hookshield_endpoint = endpoint  # type: ignore[attr-defined]
    return cls


def _guarded_sync(view: SyncView, endpoint: str) -> SyncView:
    def guarded_sync(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Guard, then the view; its delivery id released if it fails."""
        # The guard's steps inline here rather than in a helper: a call level fewer on every
        # request.
        result = check_request(request, endpoint)
        if isinstance(result, Rejection):
            return rejection_response(result)
        request.webhook = result  # type: ignore[attr-defined]
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            release(result)
            raise
        if response.status_code >= 500:
            release(result)
        return response

    return guarded_sync


def _guarded_async(view: AsyncView, endpoint: str) -> AsyncView:
    async def guarded_async(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """``guarded_sync`` for async views: the guard's network steps run off the event loop."""
        result = await _off_the_loop(check_request, request, endpoint)
        if isinstance(result, Rejection):
            return rejection_response(result)
        request.webhook = result  # type: ignore[attr-defined]
        return await _released_on_failure_async(view, request, args, kwargs, result)

    return guarded_async


async def _released_on_failure_async(
    view: AsyncView,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    accepted: Webhook,
) -> HttpResponseBase:
    # The call is inside the try: an async class view's setup() and dispatch() run in it,
    # synchronously, before there is a coroutine to await.
    try:
        response = await view(request, *args, **kwargs)
    except BaseException:
        await _off_the_loop(release, accepted)
        raise
    if response.status_code >= 500:
        await _off_the_loop(release, accepted)
    return response


async def _off_the_loop(step: Callable[..., Result], *args: Any) -> Result:
    """Run a guard step in a worker thread when it talks to Redis, a cache or the database.

    Thread-sensitive: Django runs it in the request's own sync thread, where it also opens and
    closes that thread's database connections (the default replay store is the database).
    """
    if guard_does_io():
        return await sync_to_async(step, thread_sensitive=True)(*args)
    return step(*args)
