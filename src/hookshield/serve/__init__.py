"""``hookshield serve``: uvicorn terminating mutual TLS, handing the peer certificate to Django.

uvicorn does not fill the ASGI TLS extension (``scope["extensions"]["tls"]``); this module adds
it with a subclass of uvicorn's h11 protocol that reads the connection's SSL object once per
connection. The guard's ``asgi-tls`` source then reads the certificate, with no proxy and no
header anyone could forge. For development and small deployments.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ServeOptions", "serve", "tls_protocol"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]
_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


@dataclass(frozen=True, slots=True)
class ServeOptions:
    app: str  # "module:attribute"
    cert: Path
    key: Path
    client_ca: Path
    client_auth: str = "required"  # required | optional
    host: str = "127.0.0.1"
    port: int = 8443
    log_level: str = "info"


def tls_extension(transport: asyncio.BaseTransport, server_pem: str) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection (asgiref's ``tls`` spec, version 0.2)."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name = None
    if der:
        chain = [ssl.DER_cert_to_PEM_cert(der)]
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return {
        "server_cert": server_pem,
        "client_cert_chain": chain,  # Python's ssl exposes only the leaf before 3.13
        "client_cert_name": name,
        "client_cert_error": None,  # OpenSSL refused any certificate that did not verify
        "tls_version": _VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,  # Python names the cipher but does not give its IANA number
    }


def tls_protocol(server_pem: str) -> type[H11Protocol]:
    """uvicorn's h11 protocol, adding the TLS extension to every scope of the connection."""

    class TlsExtensionProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            tls = tls_extension(transport, server_pem)
            if tls is None:
                return
            app: ASGIApp = self.app

            async def with_tls(scope: Scope, receive: Any, send: Any) -> None:
                if scope["type"] in ("http", "websocket"):
                    scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
                await app(scope, receive, send)

            self.app = with_tls

    return TlsExtensionProtocol


def config(options: ServeOptions) -> uvicorn.Config:
    return uvicorn.Config(
        options.app,
        host=options.host,
        port=options.port,
        http=tls_protocol(options.cert.read_text()),
        ssl_certfile=str(options.cert),
        ssl_keyfile=str(options.key),
        ssl_ca_certs=str(options.client_ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED if options.client_auth == "required" else ssl.CERT_OPTIONAL,
        lifespan="off",
        log_level=options.log_level,
        server_header=False,
        date_header=False,
    )


def serve(options: ServeOptions) -> None:
    uvicorn.Server(config(options)).run()
