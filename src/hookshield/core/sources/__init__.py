"""Certificate sources: one module per place a deployment puts the client certificate."""

from __future__ import annotations

from importlib import import_module

from hookshield.core.errors import ConfigurationError
from hookshield.core.sources.apache import ApacheSource
from hookshield.core.sources.asgi_tls import AsgiTlsSource
from hookshield.core.sources.aws_alb import AwsAlbSource
from hookshield.core.sources.base import HeaderSource, Inbound, Source, meta_key
from hookshield.core.sources.caddy import CaddySource
from hookshield.core.sources.haproxy import HaproxySource
from hookshield.core.sources.nginx import NginxSource
from hookshield.core.sources.rfc9440 import CloudflareSource, GcpSource
from hookshield.core.sources.traefik import TraefikSource
from hookshield.core.sources.wsgi import WsgiEnvironSource
from hookshield.core.sources.xfcc import XfccSource

__all__ = ["HEADER_SOURCES", "SOURCE_NAMES", "Inbound", "Source", "build_source", "meta_key"]

HEADER_SOURCES: dict[str, type[HeaderSource]] = {
    cls.name: cls
    for cls in (
        NginxSource,
        XfccSource,
        TraefikSource,
        HaproxySource,
        AwsAlbSource,
        GcpSource,
        CloudflareSource,
        CaddySource,
        ApacheSource,
    )
}
SOURCE_NAMES = ("asgi-tls", "wsgi-environ", *HEADER_SOURCES)


def build_source(
    name: str,
    *,
    cert_header: str | None = None,
    verify_header: str | None = None,
    chain_header: str | None = None,
) -> Source:
    """A source by its short name, or a dotted path to a class implementing ``Source``.

    A custom class is instantiated without arguments and must implement the whole ``Source``
    protocol, ``forwarded`` included: whether its input can be forged is its author's call.
    """
    if name == "asgi-tls":
        return AsgiTlsSource()
    if name == "wsgi-environ":
        return WsgiEnvironSource()
    if name in HEADER_SOURCES:
        return HEADER_SOURCES[name](
            cert_header=cert_header, verify_header=verify_header, chain_header=chain_header
        )
    module_name, _, attr = name.rpartition(".")
    if not module_name:
        raise ConfigurationError(
            f"CERT_SOURCE = {name!r} is not one of {', '.join(SOURCE_NAMES)} nor a dotted path"
        )
    try:
        source = getattr(import_module(module_name), attr)()
    except (ImportError, AttributeError, TypeError) as exc:
        raise ConfigurationError(f"CERT_SOURCE = {name!r} cannot be instantiated: {exc}") from exc
    for member in ("name", "forwarded", "meta_keys", "take"):
        if not hasattr(source, member):
            raise ConfigurationError(
                f"CERT_SOURCE = {name!r} lacks {member!r} of the Source protocol"
            )
    if not isinstance(source.forwarded, bool):
        raise ConfigurationError(f"CERT_SOURCE = {name!r}: 'forwarded' must be True or False")
    return source  # type: ignore[no-any-return]
