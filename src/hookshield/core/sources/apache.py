"""Apache httpd mod_headers: ``%{SSL_CLIENT_CERT}s`` in ``SSL-Client-Cert``, with
``%{SSL_CLIENT_VERIFY}s`` in ``SSL-Client-Verify``.

httpd config (what ``hookshield proxy-config apache`` writes)::

    RequestHeader set SSL-Client-Cert "%{SSL_CLIENT_CERT}s"
    RequestHeader set SSL-Client-Verify "%{SSL_CLIENT_VERIFY}s"

``RequestHeader`` turns the PEM's line breaks into spaces; the PEM reader ignores whitespace
inside a block. ``(null)`` is what httpd writes for an unset variable: no certificate. The
verdict is required: ``SUCCESS`` only (``NONE`` means no certificate was presented).
"""

from __future__ import annotations

from hookshield.core.certs import pem_blocks
from hookshield.core.sources.base import HeaderSource, Inbound

_UNSET = "(null)"


class ApacheSource(HeaderSource):
    name = "apache"
    default_header = "SSL-Client-Cert"
    default_verify_header = "SSL-Client-Verify"
    verified_values = frozenset({"SUCCESS"})
    absent_values = frozenset({"NONE"})

    def header(self, inbound: Inbound, key: str, name: str) -> str | None:
        value = super().header(inbound, key, name)
        return None if value == _UNSET else value

    def decode(self, raw: str) -> tuple[bytes, ...] | None:
        return pem_blocks(raw, self.cert_header)
