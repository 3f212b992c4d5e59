"""System checks (``manage.py check --deploy``): misconfigurations that weaken or break the guard.

Ids are stable and never reused: ``hookshield.E0xx`` errors, ``hookshield.W0xx`` warnings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, get_resolver

from hookshield.core.certs import load_chain
from hookshield.core.errors import HookshieldError, Rejection
from hookshield.core.headers import catalogued
from hookshield.core.revocation import RevocationLists
from hookshield.core.sources import build_source
from hookshield.django.conf import Settings, get_settings
from hookshield.django.guard import get_guard
from hookshield.django.inventory import CACHE_ALIAS

E001_ID = "hookshield.E001"

E002 = Error(
    "HOOKSHIELD['CERT_SOURCE'] reads a certificate header but HOOKSHIELD['TRUSTED_PROXIES'] is "
    "empty, so no request's certificate is ever believed and every webhook answers 401.",
    hint="List the CIDR networks of the TLS terminators that set the header, e.g. ['10.0.0.5/32'].",
    id="hookshield.E002",
)
E003 = Error(
    "HOOKSHIELD['TRUST_ANCHORS'] is empty, so no client certificate can be verified and every "
    "webhook answers 401.",
    hint="Point it at the PEM file(s) of the CA that issues your services' client certificates.",
    id="hookshield.E003",
)
E004_ID = "hookshield.E004"
E005_ID = "hookshield.E005"
E006_ID = "hookshield.E006"
E007_ID = "hookshield.E007"
E008_ID = "hookshield.E008"
W001 = Warning(
    "DEBUG is True: fine for development, never for webhooks that face real callers.",
    hint="Set DEBUG = False in production. hookshield's rejections stay JSON either way.",
    id="hookshield.W001",
)
W002_ID = "hookshield.W002"
W003 = Warning(
    "HOOKSHIELD['RATE_LIMIT_STORAGE'] is memory://, so every worker process counts on its own: "
    "with N workers an identity gets N times its RATE.",
    hint="Point it at redis://... when more than one process serves webhooks.",
    id="hookshield.W003",
)
W004_ID = "hookshield.W004"
W005_ID = "hookshield.W005"
E009_ID = "hookshield.E009"
E010_ID = "hookshield.E010"
E012_ID = "hookshield.E012"
E013_ID = "hookshield.E013"
E011 = Error(
    "HOOKSHIELD['INVENTORY'] is on but the default cache is a DummyCache: the inventory counts "
    "through the cache, so nothing would ever be recorded.",
    hint="Use a Redis, Memcached, database or local-memory cache as CACHES['default'].",
    id="hookshield.E011",
)
W006 = Warning(
    "HOOKSHIELD['INVENTORY'] is on and the default cache is a LocMemCache: every worker process "
    "counts and writes on its own, up to one database write per certificate, endpoint and "
    "minute per process instead of overall.",
    hint="Use a shared cache (Redis, Memcached, database) as CACHES['default'].",
    id="hookshield.W006",
)

W007 = Warning(
    "HOOKSHIELD['CERT_SOURCE'] is not set, so the guard reads client certificates from the ASGI "
    "TLS extension (asgi-tls), which only an ASGI server that terminates TLS itself provides "
    "(hookshield serve). Under a WSGI server (gunicorn, uWSGI, mod_wsgi, runserver), or behind "
    "a proxy that terminates TLS, every delivery is refused with 401 client_cert_missing.",
    hint="Set CERT_SOURCE to your terminator's source ('nginx', 'haproxy', 'envoy-xfcc', ...), "
    "'wsgi-environ' under Apache mod_wsgi with mod_ssl, or 'asgi-tls' explicitly when hookshield "
    "serve terminates TLS.",
    id="hookshield.W007",
)
W008 = Warning(
    "HOOKSHIELD['CERT_SOURCE'] reads a certificate header but PROXY_SECRET is not set: anything "
    "that reaches the app from a TRUSTED_PROXIES address (another service or sidecar on the "
    "proxy's host, a second proxy route that does not overwrite the header) can claim any "
    "identity.",
    hint="Set PROXY_SECRET and have the terminator send it: `hookshield proxy-config` writes both.",
    id="hookshield.W008",
)
W009 = Warning(
    "HOOKSHIELD['REPLAY_STORAGE'] is memory://, which each worker process keeps on its own: a "
    "signed delivery replayed to another worker, or another host, is accepted again.",
    hint="Unless one process serves webhooks, use the default (the database, db://default), "
    "redis://... or a shared cache alias.",
    id="hookshield.W009",
)

W010_ID = "hookshield.W010"

# Django releases that map `x_foo` and `x-foo` headers to one META key (CVE-2026-3902), so a
# client's underscore copy of a certificate header can slip past a proxy that strips the other.
_FIXED = {(4, 2): (4, 2, 30), (5, 2): (5, 2, 13), (6, 0): (6, 0, 4)}


def _settings_or_error() -> tuple[Settings | None, list[CheckMessage]]:
    try:
        return get_settings(), []
    except ImproperlyConfigured as exc:
        return None, [Error(str(exc), hint="Fix the named key in settings.HOOKSHIELD.", id=E001_ID)]


def _forwarded(conf: Settings) -> bool:
    """Whether the configured source reads what a client could also send (its own word)."""
    try:
        source = build_source(
            conf.cert_source,
            cert_header=conf.cert_header,
            verify_header=conf.cert_verify_header,
            chain_header=conf.cert_chain_header,
        )
    except HookshieldError:
        return True  # a dotted path that cannot be loaded: assume the worse case
    return bool(source.forwarded)


def check_trusted_proxies(conf: Settings) -> list[CheckMessage]:
    if not _forwarded(conf):
        return []
    if not conf.trusted_proxies:
        return [E002]
    everyone = [str(n) for n in conf.trusted_proxies if n.prefixlen == 0]
    if everyone:
        return [
            Error(
                f"HOOKSHIELD['TRUSTED_PROXIES'] contains {', '.join(everyone)}: every peer may set "
                "certificate headers, so any client can claim any identity.",
                hint="List only the terminators' own addresses.",
                id=E008_ID,
            )
        ]
    return []


def _unreadable(paths: Sequence[Path]) -> Iterator[tuple[Path, str]]:
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield path, exc.strerror or str(exc)
            continue
        try:
            load_chain(data, str(path))
        except HookshieldError as exc:
            yield path, str(exc)


def check_anchor_files(conf: Settings) -> list[CheckMessage]:
    if not conf.trust_anchors:
        return [E003]
    return [
        Error(
            f"Certificate file {path} (TRUST_ANCHORS/INTERMEDIATES) cannot be used: {why}. "
            "hookshield refuses to start until it can.",
            hint="Check the path, the file's permissions for the app's user, and that it is PEM.",
            id=E004_ID,
        )
        for path, why in _unreadable((*conf.trust_anchors, *conf.intermediates))
    ]


def check_crl_files(conf: Settings) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for path in conf.crls:
        refused, _ = RevocationLists([path]).check([], dt.datetime.now(dt.UTC))
        if refused is not None:
            errors.append(
                Error(
                    f"HOOKSHIELD['CRLS'] file {path}: {refused.reason}. hookshield refuses to "
                    "start with it, and answers 401 while a CRL it reloads cannot be read.",
                    hint="Check the path and permissions; the file must be a PEM or DER CRL.",
                    id=E005_ID,
                )
            )
    return errors


def check_empty_allowlists(conf: Settings) -> list[CheckMessage]:
    return [
        Error(
            f"HOOKSHIELD['ENDPOINTS'][{name!r}]['ALLOW'] is empty: no identity can call it.",
            hint="Add the SPIFFE IDs (or dns:, uri:, sha256: entries) of its callers.",
            id=E006_ID,
        )
        for name, endpoint in conf.endpoints.items()
        if not endpoint.allow
    ]


def _views(patterns: Sequence[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def check_unknown_endpoints(conf: Settings) -> list[CheckMessage]:
    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    named = sorted(
        {
            name
            for view in _views(get_resolver().url_patterns)
            if (name := getattr(view, "hookshield_endpoint", None)) is not None
            and name not in conf.endpoints
        }
    )
    return [
        Error(
            f"A view is decorated with @webhook({name!r}) but HOOKSHIELD['ENDPOINTS'] has no "
            f"{name!r} (any more): it answers 503 to every request.",
            hint=f"Add HOOKSHIELD['ENDPOINTS'][{name!r}] with its ALLOW list, or fix the name.",
            id=E007_ID,
        )
        for name in named
    ]


def check_unguarded_drf_views(conf: Settings) -> list[CheckMessage]:
    """DRF views listing WebhookAuthentication without @webhook refuse every request (503)."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    try:
        from hookshield.django.drf import WebhookAuthentication
    except ImportError:  # DRF is not installed
        return []
    unguarded = sorted(
        {
            f"{cls.__module__}.{cls.__qualname__}"
            for view in _views(get_resolver().url_patterns)
            if (cls := getattr(view, "cls", None)) is not None
            and getattr(view, "hookshield_endpoint", None) is None
            and any(
                isinstance(a, type) and issubclass(a, WebhookAuthentication)
                for a in getattr(cls, "authentication_classes", ())
            )
        }
    )
    return [
        Error(
            f"{name} lists WebhookAuthentication but is not decorated with @webhook: every "
            "request to it is refused with 503, since nothing guards it.",
            hint="Decorate the class: @webhook('<endpoint>') above 'class ...'.",
            id=E012_ID,
        )
        for name in unguarded
    ]


def check_django_version(conf: Settings) -> list[CheckMessage]:
    if not _forwarded(conf):
        return []
    version = django.VERSION[:3]
    fixed = _FIXED.get(version[:2])
    if fixed is not None and version >= fixed:
        return []
    if fixed is None and version[:2] > max(_FIXED):
        return []
    return [
        Warning(
            f"Django {django.get_version()} maps 'X_SSL_Client_Cert' and 'X-SSL-Client-Cert' "
            "to the same META key under ASGI (CVE-2026-3902): a client's underscore copy of a "
            "certificate header can slip past a proxy that strips only the hyphenated one.",
            hint="Upgrade to Django 4.2.30, 5.2.13, 6.0.4 or later.",
            id=W002_ID,
        )
    ]


def _cache_backend(alias: str) -> str | None:
    """The backend of a cache alias (Django's default when CACHES is unset), None if unknown."""
    caches_setting = getattr(settings, "CACHES", {}) or {"default": {}}
    if alias not in caches_setting:
        return None
    return str(
        caches_setting[alias].get("BACKEND", "django.core.cache.backends.locmem.LocMemCache")
    )


def check_replay_storage(conf: Settings) -> list[CheckMessage]:
    if not conf.signed_endpoints or "://" in conf.replay_storage:
        return []
    alias = conf.replay_storage
    backend = _cache_backend(alias)
    if backend is None:
        return [
            Error(
                f"HOOKSHIELD['REPLAY_STORAGE'] = {alias!r} is not a cache alias in CACHES: signed "
                "webhooks answer 503 until it is.",
                hint="Name an alias of CACHES, or use memory:// (one process) or redis://...",
                id=E009_ID,
            )
        ]
    if backend.endswith("DummyCache"):
        return [
            Error(
                f"HOOKSHIELD['REPLAY_STORAGE'] = {alias!r} is a DummyCache, which stores "
                "nothing: every replayed delivery would be accepted.",
                hint="Use a Redis, Memcached or database cache, or redis:// directly.",
                id=E010_ID,
            )
        ]
    if backend.endswith("LocMemCache"):
        return [
            Warning(
                f"HOOKSHIELD['REPLAY_STORAGE'] = {alias!r} is a LocMemCache: a delivery "
                "replayed to another worker process is not recognised.",
                hint="Use a shared cache (Redis, Memcached, database) or redis:// directly.",
                id=W004_ID,
            )
        ]
    return []


def check_inventory_cache(conf: Settings) -> list[CheckMessage]:
    if not conf.inventory:
        return []
    return [E011] if str(_cache_backend(CACHE_ALIAS)).endswith("DummyCache") else []


def check_inventory_cache_shared(conf: Settings) -> list[CheckMessage]:
    if not conf.inventory:
        return []
    return [W006] if str(_cache_backend(CACHE_ALIAS)).endswith("LocMemCache") else []


def check_rate_limit_storage(conf: Settings) -> list[CheckMessage]:
    rated = any(endpoint.rates for endpoint in conf.endpoints.values())
    return [W003] if rated and not conf.rate_limit_storage.startswith(("redis", "valkey")) else []


def check_default_source(conf: Settings) -> list[CheckMessage]:
    return [] if conf.cert_source_set else [W007]


def check_proxy_secret(conf: Settings) -> list[CheckMessage]:
    return [W008] if _forwarded(conf) and not conf.proxy_secrets else []


def check_uncatalogued_headers(conf: Settings) -> list[CheckMessage]:
    """A header the catalogue does not know is not removed by generated proxy configurations."""
    if not _forwarded(conf):
        return []
    unknown = [
        (key, name)
        for key, name in (
            ("CERT_HEADER", conf.cert_header),
            ("CERT_VERIFY_HEADER", conf.cert_verify_header),
            ("CERT_CHAIN_HEADER", conf.cert_chain_header),
        )
        if name is not None and not catalogued(name)
    ]
    return [
        Warning(
            f"HOOKSHIELD[{key!r}] = {name!r} is not a header hookshield catalogues, so the "
            "configurations `hookshield proxy-config` writes do not remove a client's copy of "
            "it; a terminator that sets it on one path only lets clients forge it on others.",
            hint=f"Make the terminator set or remove {name} on every request, or use one of "
            "the usual names (see hookshield.core.headers).",
            id=W010_ID,
        )
        for key, name in unknown
    ]


def check_per_process_replay(conf: Settings) -> list[CheckMessage]:
    per_process = conf.replay_storage.startswith("memory://")
    return [W009] if conf.signed_endpoints and per_process else []


def check_unlimited_endpoints(conf: Settings) -> list[CheckMessage]:
    return [
        Warning(
            f"HOOKSHIELD['ENDPOINTS'][{name!r}] has no RATE: one leaked or misbehaving "
            "certificate can flood it.",
            hint="Set RATE, e.g. '100/minute', at what the caller needs.",
            id=W005_ID,
        )
        for name, endpoint in conf.endpoints.items()
        if not endpoint.rates
    ]


def check_guard_builds() -> list[CheckMessage]:
    """What else stops the guard from being built (what a server's start-up refuses).

    Asks the process's guard rather than building another: management commands build it on
    first use (a server has built it at start-up, or not started).
    """
    guard = get_guard()
    if not isinstance(guard, Rejection):
        return []
    return [
        Error(
            f"The {guard.reason}. Servers (get_wsgi_application(), get_asgi_application()) "
            "refuse to start with it.",
            hint="Fix the named key in settings.HOOKSHIELD.",
            id=E013_ID,
        )
    ]


@register(Tags.security)
def hookshield_checks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    conf, errors = _settings_or_error()
    if conf is None:
        return errors
    messages = _setting_checks(conf)
    # Problems the checks above name precisely are not repeated in the general form.
    if not any(message.is_serious() for message in messages):
        messages += check_guard_builds()
    return messages


def _setting_checks(conf: Settings) -> list[CheckMessage]:
    return [
        *check_trusted_proxies(conf),
        *check_anchor_files(conf),
        *check_crl_files(conf),
        *check_empty_allowlists(conf),
        *check_default_source(conf),
        *check_unknown_endpoints(conf),
        *check_unguarded_drf_views(conf),
        *check_django_version(conf),
        *check_replay_storage(conf),
        *check_inventory_cache(conf),
    ]


@register(Tags.security, deploy=True)
def hookshield_deploy_checks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = [W001] if settings.DEBUG else []
    conf, _ = _settings_or_error()
    if conf is not None:
        messages += [
            *check_rate_limit_storage(conf),
            *check_proxy_secret(conf),
            *check_per_process_replay(conf),
            *check_uncatalogued_headers(conf),
            *check_unlimited_endpoints(conf),
            *check_inventory_cache_shared(conf),
        ]
    return messages
