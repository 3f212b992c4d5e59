"""``settings.HOOKSHIELD``, validated once into frozen values.

Every error names the key path (``HOOKSHIELD['ENDPOINTS']['payments']['ALLOW'][0]``) and what was
expected. Keys hookshield does not know are refused rather than ignored: a limit that looks
configured but is not enforced is worse than a startup error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from hookshield.core.errors import ConfigurationError
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import DEFAULT_SECRET_HEADER, parse_networks
from hookshield.core.sources import HEADER_SOURCES, SOURCE_NAMES
from hookshield.core.verify import LongLived

__all__ = ["EndpointSettings", "Settings", "get_settings", "load"]

_TOP = "HOOKSHIELD"
_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,128}")
MIN_PROXY_SECRET = 16

# Named in the design but not implemented by this version: refused with a clear message.
_LATER = frozenset(
    {"RATE_LIMIT_STORAGE", "RATE_LIMIT_FAILURE", "REPLAY_STORAGE", "REDACT", "INVENTORY"}
)
_LATER_ENDPOINT = frozenset(
    {
        "RATE",
        "MAX_BODY",
        "METHODS",
        "CONTENT_TYPES",
        "SCHEMA",
        "SIGNING_SECRETS",
        "TIMESTAMP_TOLERANCE",
    }
)


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    name: str
    allow: Allowlist
    allow_cn: bool


@dataclass(frozen=True, slots=True)
class Settings:
    cert_source: str
    cert_header: str | None
    cert_verify_header: str | None
    cert_chain_header: str | None
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    proxy_secrets: tuple[str, ...]
    proxy_secret_header: str
    trust_anchors: tuple[Path, ...]
    intermediates: tuple[Path, ...]
    crls: tuple[Path, ...]
    crl_reload_interval: float
    max_cert_lifetime_days: int | None
    long_lived: LongLived
    verify_cache_size: int
    endpoints: Mapping[str, EndpointSettings]

    @property
    def header_source(self) -> bool:
        """True when the certificate arrives in a header a client could also send."""
        return self.cert_source not in ("asgi-tls", "wsgi-environ")

    @property
    def allow_cn(self) -> bool:
        return any(e.allow_cn for e in self.endpoints.values())


def _path(*keys: str | int) -> str:
    return _TOP + "".join(f"[{k!r}]" for k in keys)


def _bad(keys: tuple[str | int, ...], expected: str, value: Any) -> ConfigurationError:
    return ConfigurationError(f"{_path(*keys)} must be {expected}, not {value!r}")


def _strings(raw: Mapping[str, Any], key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = raw.get(key, default)
    if isinstance(value, str | Path) or not isinstance(value, list | tuple):
        raise _bad((key,), "a list of strings", value)
    for index, item in enumerate(value):
        if not isinstance(item, str | Path) or not str(item):
            raise _bad((key, index), "a non-empty string", item)
    return tuple(str(item) for item in value)


def _header(raw: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
        raise _bad((key,), "an HTTP header name of letters, digits and '-'", value)
    return value


def _choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise _bad((key,), "one of " + ", ".join(repr(c) for c in choices), value)
    return str(value)


def _number(raw: Mapping[str, Any], key: str, default: float | None, *, integer: bool) -> Any:
    value = raw.get(key, default)
    if value is None and default is None:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise _bad((key,), "a positive " + ("integer" if integer else "number"), value)
    return value


def _endpoint(name: Any, raw: Any) -> EndpointSettings:
    if not isinstance(name, str) or not _ENDPOINT_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{_path('ENDPOINTS')} key {name!r} must be a name of letters, digits, '_' and '-'"
        )
    if not isinstance(raw, Mapping):
        raise _bad(("ENDPOINTS", name), "a dict", raw)
    for key in raw:
        if key in _LATER_ENDPOINT:
            raise ConfigurationError(
                f"{_path('ENDPOINTS', name, key)} is not supported by this version of hookshield; "
                "remove it rather than rely on it"
            )
        if key not in ("ALLOW", "ALLOW_CN"):
            raise ConfigurationError(
                f"{_path('ENDPOINTS', name, key)} is not a hookshield endpoint setting "
                "(known: ALLOW, ALLOW_CN)"
            )
    allow_cn = raw.get("ALLOW_CN", False)
    if not isinstance(allow_cn, bool):
        raise _bad(("ENDPOINTS", name, "ALLOW_CN"), "True or False", allow_cn)
    entries = raw.get("ALLOW", [])
    if isinstance(entries, str) or not isinstance(entries, list | tuple):
        raise _bad(("ENDPOINTS", name, "ALLOW"), "a list of identities", entries)
    allow = Allowlist.parse(entries, allow_cn=allow_cn, where=_path("ENDPOINTS", name, "ALLOW"))
    return EndpointSettings(name, allow, allow_cn)


_KNOWN = frozenset(
    {
        "CERT_SOURCE",
        "CERT_HEADER",
        "CERT_VERIFY_HEADER",
        "CERT_CHAIN_HEADER",
        "TRUSTED_PROXIES",
        "PROXY_SECRET",
        "PROXY_SECRET_HEADER",
        "TRUST_ANCHORS",
        "INTERMEDIATES",
        "CRLS",
        "CRL_RELOAD_INTERVAL",
        "MAX_CERT_LIFETIME_DAYS",
        "LONG_LIVED",
        "VERIFY_CACHE_SIZE",
        "ENDPOINTS",
    }
)


def load(raw: Any) -> Settings:
    """Validate a ``HOOKSHIELD`` dict; raise ``ConfigurationError`` naming the first bad key."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{_TOP} must be a dict, not {type(raw).__name__}")
    for key in raw:
        if key in _LATER:
            raise ConfigurationError(
                f"{_path(key)} is not supported by this version of hookshield; "
                "remove it rather than rely on it"
            )
        if key not in _KNOWN:
            raise ConfigurationError(
                f"{_path(key)} is not a hookshield setting (known: {', '.join(sorted(_KNOWN))})"
            )
    source = raw.get("CERT_SOURCE", "asgi-tls")
    if not isinstance(source, str) or not (source in SOURCE_NAMES or "." in source):
        raise _bad(
            ("CERT_SOURCE",), "one of " + ", ".join(SOURCE_NAMES) + " or a dotted path", source
        )
    if source not in HEADER_SOURCES:
        for key in ("CERT_HEADER", "CERT_VERIFY_HEADER", "CERT_CHAIN_HEADER"):
            if key in raw:
                raise ConfigurationError(f"{_path(key)} has no meaning for CERT_SOURCE {source!r}")
    secrets_raw = raw.get("PROXY_SECRET")
    if secrets_raw is None:
        secrets: tuple[str, ...] = ()
    elif isinstance(secrets_raw, str):
        secrets = (secrets_raw,)
    elif isinstance(secrets_raw, list | tuple) and secrets_raw:
        secrets = tuple(secrets_raw)
    else:
        raise _bad(("PROXY_SECRET",), "None, a string or a non-empty list of strings", "<hidden>")
    for index, secret in enumerate(secrets):
        if (
            not isinstance(secret, str)
            or len(secret) < MIN_PROXY_SECRET
            or not secret.isprintable()
        ):
            where = ("PROXY_SECRET",) if isinstance(secrets_raw, str) else ("PROXY_SECRET", index)
            raise ConfigurationError(
                f"{_path(*where)} must be a printable string of at least {MIN_PROXY_SECRET} "
                "characters (value not shown)"
            )
    endpoints_raw = raw.get("ENDPOINTS", {})
    if not isinstance(endpoints_raw, Mapping):
        raise _bad(("ENDPOINTS",), "a dict of endpoint name to settings", endpoints_raw)
    networks = parse_networks(_strings(raw, "TRUSTED_PROXIES"), _path("TRUSTED_PROXIES"))
    lifetime = raw.get("MAX_CERT_LIFETIME_DAYS", 90)
    return Settings(
        cert_source=source,
        cert_header=_header(raw, "CERT_HEADER", None),
        cert_verify_header=_header(raw, "CERT_VERIFY_HEADER", None),
        cert_chain_header=_header(raw, "CERT_CHAIN_HEADER", None),
        trusted_proxies=networks,
        proxy_secrets=secrets,
        proxy_secret_header=_header(raw, "PROXY_SECRET_HEADER", DEFAULT_SECRET_HEADER)
        or DEFAULT_SECRET_HEADER,
        trust_anchors=tuple(Path(p) for p in _strings(raw, "TRUST_ANCHORS")),
        intermediates=tuple(Path(p) for p in _strings(raw, "INTERMEDIATES")),
        crls=tuple(Path(p) for p in _strings(raw, "CRLS")),
        crl_reload_interval=float(_number(raw, "CRL_RELOAD_INTERVAL", 60.0, integer=False)),
        max_cert_lifetime_days=None
        if lifetime is None
        else _number(raw, "MAX_CERT_LIFETIME_DAYS", 90, integer=True),
        long_lived=LongLived(_choice(raw, "LONG_LIVED", ("warn", "reject"), "warn")),
        verify_cache_size=_number(raw, "VERIFY_CACHE_SIZE", 4096, integer=True),
        endpoints={name: _endpoint(name, value) for name, value in endpoints_raw.items()},
    )


@functools.cache
def get_settings() -> Settings:
    """The validated settings; raises ``ImproperlyConfigured`` naming the offending key."""
    try:
        return load(getattr(django_settings, _TOP, {}))
    except ConfigurationError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == _TOP:
        get_settings.cache_clear()
