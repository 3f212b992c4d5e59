"""RFC 9440 ``Client-Cert`` / ``Client-Cert-Chain`` (structured-field byte sequences).

Used by Google Cloud load balancers (``{client_cert_leaf}`` / ``{client_cert_chain}`` in custom
headers you name, plus ``{client_cert_chain_verified}``) and Cloudflare transform rules
(``cf.tls_client_auth.cert_rfc9440``; the recipe sets the headers only for verified, unrevoked
certificates, and must remove client copies first).
"""

from __future__ import annotations

from hookshield.core.certs import MAX_CERTS, b64_der
from hookshield.core.errors import CertificateParseError
from hookshield.core.sources.base import HeaderSource


def byte_sequence(item: str, what: str) -> bytes:
    """One ``:base64:`` item."""
    if len(item) < 3 or item[0] != ":" or item[-1] != ":":
        raise CertificateParseError(f"{what} is not an RFC 9440 byte sequence (':base64:')")
    return b64_der(item[1:-1], what)


class Rfc9440Source(HeaderSource):
    """Leaf in ``Client-Cert``; intermediates (TLS order, no leaf) in ``Client-Cert-Chain``."""

    name = "rfc9440"
    default_header = "Client-Cert"
    default_chain_header = "Client-Cert-Chain"

    def __init__(
        self,
        *,
        cert_header: str | None = None,
        verify_header: str | None = None,
        chain_header: str | None = None,
    ) -> None:
        super().__init__(
            cert_header=cert_header,
            verify_header=verify_header,
            chain_header=chain_header or self.default_chain_header,
        )

    def decode(self, raw: str) -> tuple[bytes, ...]:
        return (byte_sequence(raw, self.cert_header),)

    def decode_chain(self, raw: str) -> tuple[bytes, ...]:
        if not raw:
            return ()
        items = [item.strip() for item in raw.split(",")]
        if len(items) >= MAX_CERTS:
            raise CertificateParseError(f"{self.chain_header} holds too many certificates")
        return tuple(byte_sequence(item, self.chain_header or "chain") for item in items)


class GcpSource(Rfc9440Source):
    """Google Cloud ALB custom headers; ``{client_cert_chain_verified}`` must be ``true``."""

    name = "gcp"
    default_header = "X-Client-Cert-Leaf"
    default_chain_header = "X-Client-Cert-Chain"
    default_verify_header = "X-Client-Cert-Chain-Verified"
    verified_values = frozenset({"true"})


class CloudflareSource(Rfc9440Source):
    """Cloudflare transform rule with the RFC 9440 fields."""

    name = "cloudflare"
    verified_values = frozenset({"true"})  # only consulted when CERT_VERIFY_HEADER is set
