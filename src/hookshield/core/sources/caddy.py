"""Caddy: ``{http.request.tls.client.certificate_der_base64}`` in a header of its own.

Caddyfile (what ``hookshield proxy-config caddy`` writes)::

    reverse_proxy 127.0.0.1:8000 {
        header_up X-Caddy-Client-Cert {http.request.tls.client.certificate_der_base64}
    }

The leaf only, as strict base64 DER. Caddy has no placeholder for a verdict: its ``client_auth``
must be ``require_and_verify`` (``mode request`` asks for a certificate without verifying it),
and the guard verifies the certificate again. An empty value (the placeholder of a connection
without a certificate) means none.
"""

from __future__ import annotations

from hookshield.core.certs import b64_der
from hookshield.core.sources.base import HeaderSource


class CaddySource(HeaderSource):
    name = "caddy"
    default_header = "X-Caddy-Client-Cert"

    def decode(self, raw: str) -> tuple[bytes, ...] | None:
        return (b64_der(raw, self.cert_header),)
