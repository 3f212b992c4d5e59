"""Apache mod_ssl under mod_wsgi: ``SSL_CLIENT_CERT`` and friends in the WSGI environ.

Needs ``SSLOptions +ExportCertData`` (and ``+StdEnvVars`` for ``SSL_CLIENT_VERIFY``). Environ keys
without the ``HTTP_`` prefix cannot come from a client header. ``SSL_CLIENT_VERIFY``, when present,
must be ``SUCCESS``: ``GENEROUS`` is what ``optional_no_ca`` makes of an unverifiable certificate.
"""

from __future__ import annotations

from typing import ClassVar

from hookshield.core.certs import MAX_CERTS, PresentedChain, check_size, pem_blocks
from hookshield.core.errors import CertificateParseError, ProxyVerifyError
from hookshield.core.sources.base import Inbound

_CHAIN_KEYS = tuple(f"SSL_CLIENT_CERT_CHAIN_{n}" for n in range(MAX_CERTS - 1))


def _text(inbound: Inbound, key: str) -> str | None:
    value = inbound.meta.get(key)
    if value is None or value == "" or value == "(null)":
        return None
    if not isinstance(value, str):
        raise CertificateParseError(f"{key} is not text")
    check_size(value, key)
    return value


class WsgiEnvironSource:
    name: ClassVar[str] = "wsgi-environ"
    forwarded: ClassVar[bool] = False

    def meta_keys(self) -> tuple[str, ...]:
        return ()

    def take(self, inbound: Inbound) -> PresentedChain | None:
        leaf = _text(inbound, "SSL_CLIENT_CERT")
        if leaf is None:
            return None
        verdict = _text(inbound, "SSL_CLIENT_VERIFY")
        if verdict is not None and verdict != "SUCCESS":
            raise ProxyVerifyError(f"SSL_CLIENT_VERIFY is {verdict[:120]!r}, not 'SUCCESS'")
        ders = list(pem_blocks(leaf, "SSL_CLIENT_CERT"))
        if len(ders) != 1:
            raise CertificateParseError("SSL_CLIENT_CERT holds more than one certificate")
        for key in _CHAIN_KEYS:
            pem = _text(inbound, key)
            if pem is None:
                break
            ders.extend(pem_blocks(pem, key))
        return PresentedChain(tuple(ders), self.name)
