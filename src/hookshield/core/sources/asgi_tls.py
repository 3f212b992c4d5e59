"""The ASGI TLS extension: ``scope["extensions"]["tls"]["client_cert_chain"]``.

Set by a server that terminates TLS itself (``hookshield serve``); a client cannot forge it.
A non-empty ``client_cert_error`` means the server let an unverified certificate through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hookshield.core.certs import MAX_CERTS, PresentedChain, pem_blocks
from hookshield.core.errors import CertificateParseError, ProxyVerifyError
from hookshield.core.sources.base import Inbound


class AsgiTlsSource:
    name: ClassVar[str] = "asgi-tls"
    forwarded: ClassVar[bool] = False

    def meta_keys(self) -> tuple[str, ...]:
        return ()

    def take(self, inbound: Inbound) -> PresentedChain | None:
        extensions = (inbound.scope or {}).get("extensions") or {}
        tls = extensions.get("tls") if isinstance(extensions, Mapping) else None
        if not isinstance(tls, Mapping):
            return None
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
