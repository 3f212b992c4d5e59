"""HAProxy: ``ssl_c_der,base64`` in a header, optionally ``ssl_c_verify`` in another.

HAProxy config::

    http-request del-header X-SSL-Client-Cert
    http-request set-header X-SSL-Client-Cert %[ssl_c_der,base64] if { ssl_c_used }

A value wrapped by the ``%{+Q}`` flag is unquoted; ``""`` (what ``+Q`` makes of no certificate)
means none. With ``CERT_VERIFY_HEADER`` set, its value must be ``0`` (no verify error).
"""

from __future__ import annotations

from hookshield.core.certs import b64_der
from hookshield.core.sources.base import HeaderSource


class HaproxySource(HeaderSource):
    name = "haproxy"
    default_header = "X-SSL-Client-Cert"
    verified_values = frozenset({"0"})

    def decode(self, raw: str) -> tuple[bytes, ...] | None:
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        if not raw:
            return None
        return (b64_der(raw, self.cert_header),)
