"""nginx: ``$ssl_client_escaped_cert`` in a header, with ``$ssl_client_verify`` beside it.

nginx config::

    proxy_set_header X-SSL-Client-Cert   $ssl_client_escaped_cert;
    proxy_set_header X-SSL-Client-Verify $ssl_client_verify;

The verdict is required: ``SUCCESS`` only (``FAILED:<reason>`` comes from ``optional_no_ca``).
"""

from __future__ import annotations

from hookshield.core.sources.base import HeaderSource, pem_urlenc


class NginxSource(HeaderSource):
    name = "nginx"
    default_header = "X-SSL-Client-Cert"
    default_verify_header = "X-SSL-Client-Verify"
    verified_values = frozenset({"SUCCESS"})
    absent_values = frozenset({"NONE"})

    def decode(self, raw: str) -> tuple[bytes, ...]:
        return pem_urlenc(raw, self.cert_header)
