"""AWS Application Load Balancer mTLS: URL-encoded PEM that leaves ``+``, ``=`` and ``/`` raw.

Passthrough mode sends the whole presented chain in ``X-Amzn-Mtls-Clientcert``; verify mode sends
the leaf in ``X-Amzn-Mtls-Clientcert-Leaf`` (set ``CERT_HEADER`` to that). ALB sends no verdict
header, so the guard's own verification is what stands.
"""

from __future__ import annotations

from hookshield.core.sources.base import HeaderSource, pem_urlenc


class AwsAlbSource(HeaderSource):
    name = "aws-alb"
    default_header = "X-Amzn-Mtls-Clientcert"

    def decode(self, raw: str) -> tuple[bytes, ...]:
        return pem_urlenc(raw, self.cert_header)
