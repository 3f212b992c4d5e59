"""Building the core ``Guard`` from settings (once) and running it on a Django request."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from django.conf import settings
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

from hookshield.core.certs import load_chain
from hookshield.core.errors import Code, ConfigurationError, HookshieldError, Rejection
from hookshield.core.pipeline import Decision, DecisionObserver, Guard, Webhook, record
from hookshield.core.proxies import DEFAULT_SECRET_HEADER, ProxyTrust
from hookshield.core.ratelimit import RateLimiter
from hookshield.core.redact import install as install_redaction
from hookshield.core.replay import (
    REPLAY_SCHEMES,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
)
from hookshield.core.revocation import RevocationLists, load_crl
from hookshield.core.sources import Inbound, build_source, meta_key
from hookshield.core.verify import Verifier
from hookshield.django.cache_replay import CacheReplayStore
from hookshield.django.conf import Settings, get_settings
from hookshield.django.inventory import InventoryRecorder

__all__ = [
    "build_guard",
    "check_request",
    "forget_proxy_secret",
    "get_guard",
    "guard_does_io",
    "inbound_of",
    "release",
    "reset_guard",
    "start_guard",
]

logger = logging.getLogger("hookshield.guard")


def build_guard(conf: Settings) -> Guard:
    """Load anchors, intermediates and CRLs from disk and assemble the steps.

    Raises ``ConfigurationError`` naming the key of a file that cannot be used.
    """
    lifetime = conf.max_cert_lifetime_days
    for index, path in enumerate(conf.crls):
        try:
            load_crl(path)
        except OSError as exc:
            raise _unusable("CRLS", index, path, exc) from exc
        except ValueError as exc:
            raise _unusable("CRLS", index, path, "not a PEM or DER CRL") from exc
    anchors, intermediates = _trust(conf)
    verifier = Verifier(
        anchors,
        intermediates=intermediates,
        revocation=RevocationLists(conf.crls, reload_interval=conf.crl_reload_interval),
        max_lifetime=dt.timedelta(days=lifetime) if lifetime is not None else None,
        long_lived=conf.long_lived,
        san_optional=conf.allow_cn,
        cache_size=conf.verify_cache_size,
    )
    source = build_source(
        conf.cert_source,
        cert_header=conf.cert_header,
        verify_header=conf.cert_verify_header,
        chain_header=conf.cert_chain_header,
    )
    trust = ProxyTrust(
        conf.trusted_proxies, secrets=conf.proxy_secrets, secret_header=conf.proxy_secret_header
    )
    observers: list[DecisionObserver] = []
    if conf.inventory:
        observers.append(InventoryRecorder(verifier, forwarded=source.forwarded))
    if conf.metrics:
        from hookshield.django.metrics import MetricsObserver

        observers.append(MetricsObserver(conf))
    limiter = RateLimiter(conf.rate_limit_storage, failure=conf.rate_limit_failure)
    return Guard(
        source=source,
        trust=trust,
        verifier=verifier,
        endpoints=conf.endpoints,
        limiter=limiter,
        replay=replay_store(conf.replay_storage, limiter) if conf.signed_endpoints else None,
        observers=observers,
        accepted_level=conf.accepted_log_level,
    )


def _trust(conf: Settings) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """The trust anchors and the intermediates for path building.

    A certificate listed in INTERMEDIATES is never an anchor, and a self-signed one is never an
    intermediate: so one chain file (intermediates and their root) can be named in both, and
    only its root is trusted; the intermediates stay on the path, where the root's CRL
    covers them.
    """
    intermediates = [
        c for c in _certificates("INTERMEDIATES", conf.intermediates) if c.issuer != c.subject
    ]
    listed = set(intermediates)
    anchors = [c for c in _certificates("TRUST_ANCHORS", conf.trust_anchors) if c not in listed]
    if conf.trust_anchors and not anchors:
        raise ConfigurationError(
            "HOOKSHIELD['TRUST_ANCHORS'] holds only certificates that INTERMEDIATES lists too: "
            "no anchor is left to trust"
        )
    return anchors, intermediates


def _certificates(key: str, paths: tuple[Path, ...]) -> list[x509.Certificate]:
    certificates: list[x509.Certificate] = []
    for index, path in enumerate(paths):
        try:
            certificates += load_chain(path.read_bytes(), str(path))
        except (OSError, HookshieldError) as exc:
            raise _unusable(key, index, path, exc) from exc
    return certificates


def _unusable(key: str, index: int, path: Path, why: Exception | str) -> ConfigurationError:
    if isinstance(why, OSError) and why.strerror:
        why = why.strerror
    return ConfigurationError(f"HOOKSHIELD[{key!r}][{index}] = {str(path)!r} cannot be used: {why}")


def replay_store(name: str, limiter: RateLimiter | None = None) -> ReplayStore:
    """``db://alias`` (the default), ``memory://``, a Redis URI, or else a Django cache alias.

    A Redis URI equal to ``RATE_LIMIT_STORAGE`` shares the limiter's client and pool.
    """
    scheme, _, rest = name.partition("://")
    if scheme == "db":
        if rest not in settings.DATABASES:
            raise ConfigurationError(
                f"HOOKSHIELD['REPLAY_STORAGE'] = {name!r} names no alias of DATABASES "
                f"({', '.join(sorted(settings.DATABASES)) or 'none'})"
            )
        # Imported here: it needs the app registry, which is not ready when this module loads.
        from hookshield.django.db_replay import DatabaseReplayStore

        return DatabaseReplayStore(rest)
    if scheme == "memory":
        return MemoryReplayStore()
    if scheme in REPLAY_SCHEMES:
        shared = limiter.redis if limiter is not None and limiter.uri == name else None
        return RedisReplayStore.sharing(shared) if shared else RedisReplayStore(name)
    try:
        return CacheReplayStore(name)
    except InvalidCacheBackendError as exc:
        raise ConfigurationError(
            f"HOOKSHIELD['REPLAY_STORAGE'] = {name!r} is neither db://, memory://, a Redis URI nor "
            f"a cache alias in CACHES ({exc})"
        ) from exc


_current: Guard | Rejection | None = None


def start_guard() -> Guard:
    """Build the process's guard now (Django's start-up), or raise naming the key at fault."""
    global _current
    try:
        guard = build_guard(get_settings())
    except HookshieldError as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    _current = guard
    return guard


def get_guard() -> Guard | Rejection:
    """The process's guard, or the rejection every request gets while it cannot be built.

    Built when Django starts (``start_guard``); rebuilt after a settings change (tests).
    """
    global _current
    current = _current
    if current is None:
        try:
            current = build_guard(get_settings())
        except (OSError, HookshieldError, ImproperlyConfigured) as exc:
            # Refuse every webhook (fail closed) with a 503 rather than a 500, say why in the
            # log; `manage.py check` reports the same problem.
            logger.error("hookshield guard unavailable: %s", exc)
            current = Rejection.guard_unavailable(f"guard unavailable: {exc}")
        _current = current
    return current


def reset_guard() -> None:
    global _current
    _current = None


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "HOOKSHIELD":
        reset_guard()
        # Invalid settings are reported when they are next used.
        with contextlib.suppress(ImproperlyConfigured):
            install_redaction(get_settings().redact)


def inbound_of(request: HttpRequest) -> Inbound:
    """The parts of a Django request the guard reads."""
    meta = request.META
    # Positional: a call with keywords costs a tenth of a µs more, on every request.
    return Inbound(
        meta.get("REMOTE_ADDR") or "",  # peer
        meta,
        getattr(request, "scope", None),
        request.method or "",
        _body_reader(request),  # read
    )


def _body_reader(request: HttpRequest) -> Callable[[int], bytes]:
    """Where the body is read from: the request, or a chunked body's de-chunked WSGI input.

    Django caps a WSGI request's stream at ``CONTENT_LENGTH``, 0 when there is none, so a body
    sent with ``Transfer-Encoding: chunked`` reads as empty. A server that de-chunks it marks
    the input terminated (``wsgi.input_terminated``, gunicorn among them): it is then read
    there, up to ``MAX_BODY`` + 1 bytes like any other. (ASGI hands Django the whole body.)
    """
    if request.META.get("CONTENT_LENGTH"):
        return request.read
    environ = getattr(request, "environ", None)
    if (
        isinstance(environ, dict)
        and environ.get("wsgi.input_terminated")
        and not request._read_started  # type: ignore[attr-defined]
        and hasattr(environ.get("wsgi.input"), "read")
    ):
        return _server_input(environ["wsgi.input"])
    return request.read


def _server_input(stream: Any) -> Callable[[int], bytes]:
    def read(size: int) -> bytes:
        try:
            return cast(bytes, stream.read(size))
        except Exception as exc:
            # The server's de-chunking refuses the client's framing with exceptions of its own
            # (gunicorn's InvalidChunkSize...): that is an unreadable body, 400 malformed_body.
            raise OSError(f"the request body could not be read: {type(exc).__name__}") from exc

    return read


def forget_proxy_secret(request: HttpRequest, guard: Guard | Rejection) -> None:
    """The proxy's secret never reaches the view, error reports or anything downstream.

    Also while the guard is unavailable: Django reports a 503 with the request attached.
    """
    if isinstance(guard, Guard):
        key = guard.trust.secret_key
    else:
        try:
            key = meta_key(get_settings().proxy_secret_header)
        except ImproperlyConfigured:
            key = meta_key(DEFAULT_SECRET_HEADER)
    request.META.pop(key, None)
    # request.headers is made from META once and kept: a middleware may have read it already.
    request.__dict__.pop("headers", None)
    scope = getattr(request, "scope", None)  # ASGI: the server's own list of the headers
    if isinstance(scope, dict) and "headers" in scope:
        headers = scope["headers"]
        kept = [(name, value) for name, value in headers if meta_key(name.decode("latin-1")) != key]
        if isinstance(headers, list):
            headers[:] = kept  # in place: an ASGI middleware around Django may hold this list
        else:
            scope["headers"] = kept


def check_request(request: HttpRequest, endpoint: str) -> Webhook | Rejection:
    """Run the guard on a Django request; on acceptance the body stays readable for the view."""
    guard = get_guard()
    inbound = inbound_of(request)
    try:
        if isinstance(guard, Rejection):
            record(Decision(endpoint, guard, inbound, None, None, 0.0))
            return guard
        try:
            result = guard.check(inbound, endpoint)
        except Exception:
            # The last guard: each step turns what its library raises into a rejection, so
            # this is a bug. Loud (ERROR, traceback), refused, never a 500 page.
            logger.exception("unexpected error in the guard on endpoint %s: refused", endpoint)
            result = Rejection(Code.REQUEST_UNPROCESSABLE, "unexpected error in the guard")
            record(Decision(endpoint, result, inbound, None, None, 0.0), guard.observers)
    finally:
        forget_proxy_secret(request, guard)
    if isinstance(result, Webhook):
        # The guard consumed the stream; hand the body back the way HttpRequest.body caches it,
        # so request.body and request.POST work in the view as usual. The stream itself stays
        # Django's (it closes it after the response).
        request._body = result.body
        request._read_started = True  # type: ignore[attr-defined]
        if not request.META.get("CONTENT_LENGTH"):
            # A chunked body's length is known now; parsers that go by it (DRF's) read it all.
            request.META["CONTENT_LENGTH"] = str(len(result.body))
    return result


def guard_does_io() -> bool:
    guard = get_guard()
    return isinstance(guard, Guard) and guard.does_io


def release(accepted: Webhook) -> None:
    guard = get_guard()
    if isinstance(guard, Guard):
        guard.release(accepted)
