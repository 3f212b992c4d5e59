"""Traefik ``passTLSClientCert`` (``pem: true``): base64 DER per certificate, joined with ``,``.

Traefik before v2.10 also query-escaped each value; ``%`` is not in the base64 alphabet, so an
escaped value is recognised without guessing. The ``-Info`` header is never used: its DN text
is not escaped and cannot be parsed unambiguously. Traefik sends no verdict header.
"""

from __future__ import annotations

from urllib.parse import unquote

from hookshield.core.certs import MAX_CERTS, b64_der
from hookshield.core.errors import CertificateParseError
from hookshield.core.sources.base import HeaderSource


class TraefikSource(HeaderSource):
    name = "traefik"
    default_header = "X-Forwarded-Tls-Client-Cert"
    single_value = False  # a chain is a ','-separated list

    def decode(self, raw: str) -> tuple[bytes, ...]:
        items = raw.split(",")
        if len(items) > MAX_CERTS:
            raise CertificateParseError(
                f"{self.cert_header} holds more than {MAX_CERTS} certificates"
            )
        ders = []
        for item in items:
            item = item.strip()
            if "%" in item:
                item = unquote(item)
            ders.append(b64_der(item, self.cert_header))
        return tuple(ders)
