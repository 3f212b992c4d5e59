"""The ASGI TLS extension: ``scope["extensions"]["tls"]["client_cert_chain"]``.

Set by a server that terminates TLS itself (``hookshield serve``); a client cannot forge it.
A non-empty ``client_cert_error`` means the server let an unverified certificate through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from hookshield.core.certs import MAX_CERTS, PresentedChain, pem_blocks
from hookshield.core.errors import CertificateParseError, Code, ProxyVerifyError, SourceError
from hookshield.core.sources.base import Inbound

logger = logging.getLogger("hookshield.source")

_FIX = (
    "set HOOKSHIELD['CERT_SOURCE'] to the source of the proxy that terminates TLS "
    "('nginx', 'haproxy', ...), or serve with `hookshield serve`"
)


class NoTlsChannel(SourceError):
    """The server this request came through cannot hand over a client certificate at all."""

    code = Code.CLIENT_CERT_MISSING


class AsgiTlsSource:
    name: ClassVar[str] = "asgi-tls"
    forwarded: ClassVar[bool] = False

    def meta_keys(self) -> tuple[str, ...]:
        return ()

    def __init__(self) -> None:
        self._reported = False

    def take(self, inbound: Inbound) -> PresentedChain | None:
        if inbound.scope is None:
            self._misconfigured(
                "this request came through a WSGI server, which has no TLS extension"
            )
        extensions = inbound.scope.get("extensions") or {}
        tls = extensions.get("tls") if isinstance(extensions, Mapping) else None
        if not isinstance(tls, Mapping):
            self._misconfigured(
                "the ASGI server passed no TLS extension (plain HTTP: a proxy terminates TLS?)"
            )
        error = tls.get("client_cert_error")
        chain = _pem_list(tls.get("client_cert_chain") or ())
        if not chain:
            return None
        if error:
            raise ProxyVerifyError(f"the server reports client_cert_error {str(error)[:200]!r}")
        ders: list[bytes] = []
        for pem in chain:
            ders.extend(pem_blocks(pem, "client_cert_chain entry"))
        return PresentedChain(tuple(ders), self.name)

    def _misconfigured(self, why: str) -> NoReturn:
        reason = f"CERT_SOURCE 'asgi-tls' reads the ASGI TLS extension, but {why}"
        if not self._reported:  # the deployment's error, not the caller's: say it once, loudly
            self._reported = True
            logger.error("%s: every delivery is refused; %s", reason, _FIX)
        raise NoTlsChannel(reason)


def _pem_list(value: Any) -> list[str]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise CertificateParseError("client_cert_chain is not a list of PEM strings")
    items = []
    for item in value:
        if not isinstance(item, str):
            raise CertificateParseError("client_cert_chain holds a non-string entry")
        items.append(item)
        if len(items) > MAX_CERTS:
            raise CertificateParseError(f"client_cert_chain holds more than {MAX_CERTS} entries")
    return items
