"""``settings.HOOKSHIELD``, validated once into frozen values.

Every error names the key path (``HOOKSHIELD['ENDPOINTS']['payments']['ALLOW'][0]``) and what was
expected, and never shows a secret. Keys hookshield does not know are refused rather than
ignored: a limit that looks configured but is not enforced is worse than a startup error.
"""

from __future__ import annotations

import functools
import logging
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
from limits import RateLimitItem

from hookshield.core.errors import ConfigurationError
from hookshield.core.payload import InputRules, Schema
from hookshield.core.pipeline import Endpoint
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import DEFAULT_SECRET_HEADER, parse_networks
from hookshield.core.ratelimit import RateLimitFailure, check_storage_uri, parse_rates
from hookshield.core.replay import check_replay_uri
from hookshield.core.signatures import DEFAULT_TOLERANCE, SignatureVerifier
from hookshield.core.sources import HEADER_SOURCES, SOURCE_NAMES
from hookshield.core.verify import LongLived

__all__ = ["Settings", "get_settings", "load", "require_endpoint"]

_TOP = "HOOKSHIELD"
_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,128}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
MIN_PROXY_SECRET = 16
# Shared by every worker and host of a deployment, as a replay store must be.
DEFAULT_REPLAY_STORAGE = "db://default"
# Accepted deliveries are logged at INFO unless lowered: at DEBUG, a logger left at INFO builds
# no record for them (refusals and long-lived certificates stay WARNING).
ACCEPTED_LOG_LEVELS = {"INFO": logging.INFO, "DEBUG": logging.DEBUG}
_DB_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
        "RATE_LIMIT_STORAGE",
        "RATE_LIMIT_FAILURE",
        "REPLAY_STORAGE",
        "REDACT",
        "ENDPOINTS",
        "INVENTORY",
        "METRICS",
        "ACCEPTED_LOG_LEVEL",
    }
)
_KNOWN_ENDPOINT = frozenset(
    {
        "ALLOW",
        "ALLOW_CN",
        "RATE",
        "METHODS",
        "CONTENT_TYPES",
        "MAX_BODY",
        "MAX_JSON_DEPTH",
        "MAX_JSON_KEYS",
        "SCHEMA",
        "SIGNING_SECRETS",
        "TIMESTAMP_TOLERANCE",
    }
)
_DEFAULT_RULES = InputRules()


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
    rate_limit_storage: str
    rate_limit_failure: RateLimitFailure
    replay_storage: str
    redact: tuple[str, ...]
    endpoints: Mapping[str, Endpoint]
    inventory: bool = False
    metrics: bool = False
    accepted_log_level: int = logging.INFO
    cert_source_set: bool = True  # False when CERT_SOURCE is the default (asgi-tls)

    @property
    def allow_cn(self) -> bool:
        return any(e.allow.common_names for e in self.endpoints.values())

    @property
    def signed_endpoints(self) -> tuple[str, ...]:
        return tuple(name for name, e in self.endpoints.items() if e.signatures is not None)


def _path(*keys: str | int) -> str:
    return _TOP + "".join(f"[{k!r}]" for k in keys)


class _Reader:
    """Typed access to one dict of the settings, with errors that name the full key path."""

    def __init__(self, raw: Mapping[str, Any], *path: str | int) -> None:
        self.raw = raw
        self.path = path

    def at(self, *keys: str | int) -> str:
        return _path(*self.path, *keys)

    def bad(
        self, key: str | int, expected: str, value: Any, *, secret: bool = False
    ) -> ConfigurationError:
        shown = "(value not shown)" if secret else f"not {value!r}"
        return ConfigurationError(f"{self.at(key)} must be {expected}, {shown}")

    def refuse_unknown(self, known: frozenset[str]) -> None:
        for key in self.raw:
            if key not in known:
                raise ConfigurationError(
                    f"{self.at(key)} is not a hookshield setting here "
                    f"(known: {', '.join(sorted(known))})"
                )

    def strings(
        self, key: str, default: tuple[str, ...] = (), *, one: bool = False
    ) -> tuple[str, ...]:
        value = self.raw.get(key, default)
        if one and isinstance(value, str):
            value = [value]
        if isinstance(value, str | Path) or not isinstance(value, list | tuple):
            raise self.bad(key, "a list of strings", value)
        for index, item in enumerate(value):
            if not isinstance(item, str | Path) or not str(item):
                raise ConfigurationError(
                    f"{self.at(key, index)} must be a non-empty string, not {item!r}"
                )
        return tuple(str(item) for item in value)

    def header(self, key: str, default: str | None) -> str | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
            raise self.bad(key, "an HTTP header name of letters, digits and '-'", value)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise self.bad(key, "one of " + ", ".join(repr(c) for c in choices), value)
        return str(value)

    def number(self, key: str, default: float, *, integer: bool, nullable: bool = False) -> Any:
        value = self.raw.get(key, default)
        if value is None and nullable:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
            raise self.bad(key, "a positive " + ("integer" if integer else "number"), value)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.bad(key, "True or False", value)
        return value

    def text(self, key: str, default: str) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.bad(key, "a non-empty string", value)
        return value


def _rules(r: _Reader) -> InputRules:
    methods = r.strings("METHODS", tuple(_DEFAULT_RULES.methods))
    for index, method in enumerate(methods):
        if not _METHOD.fullmatch(method):
            raise ConfigurationError(
                f"{r.at('METHODS', index)} = {method!r} is not an upper-case method"
            )
    content_types = tuple(
        t.lower() for t in r.strings("CONTENT_TYPES", _DEFAULT_RULES.content_types)
    )
    for index, media in enumerate(content_types):
        if not _MEDIA_TYPE.fullmatch(media):
            raise ConfigurationError(
                f"{r.at('CONTENT_TYPES', index)} = {media!r} is not a media type "
                "like application/json"
            )
    schema = None
    if "SCHEMA" in r.raw:
        value = r.raw["SCHEMA"]
        if not isinstance(value, str | Path | dict):
            raise r.bad("SCHEMA", "a JSON Schema file path or dict", value)
        schema = Schema.load(value, r.at("SCHEMA"))
    return InputRules(
        methods=frozenset(methods),
        content_types=content_types,
        max_body=r.number("MAX_BODY", _DEFAULT_RULES.max_body, integer=True),
        max_depth=r.number("MAX_JSON_DEPTH", _DEFAULT_RULES.max_depth, integer=True),
        max_keys=r.number("MAX_JSON_KEYS", _DEFAULT_RULES.max_keys, integer=True),
        schema=schema,
    )


def _endpoint(name: Any, raw: Any) -> Endpoint:
    if not isinstance(name, str) or not _ENDPOINT_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{_path('ENDPOINTS')} key {name!r} must be a name of letters, digits, '_' and '-'"
        )
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{_path('ENDPOINTS', name)} must be a dict, not {raw!r}")
    r = _Reader(raw, "ENDPOINTS", name)
    r.refuse_unknown(_KNOWN_ENDPOINT)
    allow_cn = r.boolean("ALLOW_CN", False)
    entries = raw.get("ALLOW", [])
    if isinstance(entries, str) or not isinstance(entries, list | tuple):
        raise r.bad("ALLOW", "a list of identities", entries)
    rates: tuple[RateLimitItem, ...] = ()
    if "RATE" in raw:
        rates = parse_rates(raw["RATE"], r.at("RATE"))
    signatures = None
    if "SIGNING_SECRETS" in raw:
        secrets = raw["SIGNING_SECRETS"]
        if isinstance(secrets, str) or not isinstance(secrets, list | tuple):
            raise r.bad(
                "SIGNING_SECRETS",
                "a list of 'whsec_...' / 'whpk_...' strings",
                secrets,
                secret=True,
            )
        signatures = SignatureVerifier(
            secrets,
            tolerance=r.number("TIMESTAMP_TOLERANCE", DEFAULT_TOLERANCE, integer=True),
            where=r.at("SIGNING_SECRETS"),
        )
    elif "TIMESTAMP_TOLERANCE" in raw:
        raise ConfigurationError(f"{r.at('TIMESTAMP_TOLERANCE')} needs SIGNING_SECRETS")
    return Endpoint(
        name=name,
        allow=Allowlist.parse(entries, allow_cn=allow_cn, where=r.at("ALLOW")),
        rates=rates,
        rules=_rules(r),
        signatures=signatures,
    )


def _secrets(r: _Reader) -> tuple[str, ...]:
    raw = r.raw.get("PROXY_SECRET")
    if raw is None:
        return ()
    if isinstance(raw, str):
        secrets: tuple[Any, ...] = (raw,)
    elif isinstance(raw, list | tuple) and raw:
        secrets = tuple(raw)
    else:
        raise r.bad(
            "PROXY_SECRET", "None, a string or a non-empty list of strings", raw, secret=True
        )
    for index, secret in enumerate(secrets):
        if (
            not isinstance(secret, str)
            or len(secret) < MIN_PROXY_SECRET
            or not secret.isprintable()
        ):
            where = r.at("PROXY_SECRET") if isinstance(raw, str) else r.at("PROXY_SECRET", index)
            raise ConfigurationError(
                f"{where} must be a printable string of at least {MIN_PROXY_SECRET} characters "
                "(value not shown)"
            )
    return secrets


def load(raw: Any) -> Settings:
    """Validate a ``HOOKSHIELD`` dict; raise ``ConfigurationError`` naming the first bad key."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{_TOP} must be a dict, not {type(raw).__name__}")
    r = _Reader(raw)
    r.refuse_unknown(_KNOWN)
    source = _cert_source(r)
    endpoints_raw = raw.get("ENDPOINTS", {})
    if not isinstance(endpoints_raw, Mapping):
        raise r.bad("ENDPOINTS", "a dict of endpoint name to settings", endpoints_raw)
    storage = r.text("RATE_LIMIT_STORAGE", "memory://")
    check_storage_uri(storage, r.at("RATE_LIMIT_STORAGE"))
    replay = _replay_storage(r)
    return Settings(
        cert_source=source,
        cert_header=r.header("CERT_HEADER", None),
        cert_verify_header=r.header("CERT_VERIFY_HEADER", None),
        cert_chain_header=r.header("CERT_CHAIN_HEADER", None),
        trusted_proxies=parse_networks(r.strings("TRUSTED_PROXIES"), r.at("TRUSTED_PROXIES")),
        proxy_secrets=_secrets(r),
        proxy_secret_header=r.header("PROXY_SECRET_HEADER", DEFAULT_SECRET_HEADER)
        or DEFAULT_SECRET_HEADER,
        trust_anchors=tuple(Path(p) for p in r.strings("TRUST_ANCHORS")),
        intermediates=tuple(Path(p) for p in r.strings("INTERMEDIATES")),
        crls=tuple(Path(p) for p in r.strings("CRLS")),
        crl_reload_interval=float(r.number("CRL_RELOAD_INTERVAL", 60.0, integer=False)),
        max_cert_lifetime_days=r.number("MAX_CERT_LIFETIME_DAYS", 90, integer=True, nullable=True),
        long_lived=LongLived(r.choice("LONG_LIVED", ("warn", "reject"), "warn")),
        verify_cache_size=r.number("VERIFY_CACHE_SIZE", 4096, integer=True),
        rate_limit_storage=storage,
        rate_limit_failure=RateLimitFailure(
            r.choice("RATE_LIMIT_FAILURE", tuple(m.value for m in RateLimitFailure), "local")
        ),
        replay_storage=replay,
        redact=r.strings("REDACT"),
        endpoints={name: _endpoint(name, value) for name, value in endpoints_raw.items()},
        inventory=r.boolean("INVENTORY", False),
        metrics=_metrics(r),
        accepted_log_level=ACCEPTED_LOG_LEVELS[
            r.choice("ACCEPTED_LOG_LEVEL", tuple(ACCEPTED_LOG_LEVELS), "INFO")
        ],
        cert_source_set="CERT_SOURCE" in raw,
    )


def _cert_source(r: _Reader) -> str:
    source = r.raw.get("CERT_SOURCE", "asgi-tls")
    if not isinstance(source, str) or not (source in SOURCE_NAMES or "." in source):
        raise r.bad(
            "CERT_SOURCE", "one of " + ", ".join(SOURCE_NAMES) + " or a dotted path", source
        )
    if source not in HEADER_SOURCES:
        for key in ("CERT_HEADER", "CERT_VERIFY_HEADER", "CERT_CHAIN_HEADER"):
            if key in r.raw:
                raise ConfigurationError(f"{r.at(key)} has no meaning for CERT_SOURCE {source!r}")
    return source


def _replay_storage(r: _Reader) -> str:
    replay = r.text("REPLAY_STORAGE", DEFAULT_REPLAY_STORAGE)
    if not replay.startswith("db://"):
        check_replay_uri(replay, r.at("REPLAY_STORAGE"))
    elif not _DB_ALIAS.fullmatch(replay.removeprefix("db://")):
        raise r.bad("REPLAY_STORAGE", "db://<an alias of DATABASES>", replay)
    return replay


def _metrics(r: _Reader) -> bool:
    enabled = r.boolean("METRICS", False)
    if enabled:
        try:
            import prometheus_client  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                f"{r.at('METRICS')} needs prometheus_client: pip install 'hookshield[metrics]'"
            ) from exc
    return enabled


@functools.cache
def get_settings() -> Settings:
    """The validated settings; raises ``ImproperlyConfigured`` naming the offending key."""
    try:
        return load(getattr(django_settings, _TOP, {}))
    except ConfigurationError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


def require_endpoint(name: str, where: str) -> None:
    """Refuse code that names an endpoint the settings do not configure, naming those that are."""
    if not django_settings.configured:
        return  # imported before Django is set up: the system check E007 reports it later
    endpoints = get_settings().endpoints
    if name not in endpoints:
        known = ", ".join(repr(n) for n in sorted(endpoints)) or "none"
        raise ImproperlyConfigured(
            f"{where}: HOOKSHIELD['ENDPOINTS'] has no {name!r} (configured: {known})"
        )


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == _TOP:
        get_settings.cache_clear()
