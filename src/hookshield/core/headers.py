"""The catalogue of headers that carry a client certificate, or something about one, into an app.

One table for everything that must know these names: ``proxy-config`` (every generated
terminator configuration removes each name a client sends), the system checks (W010) and the
scanner's forged-header probes use it, and a test keeps the sources' header names in it. A
client can send any of them; only the terminator's own copy, set on every request, may reach
the app.

Formats and who sets what: docs/certificate-formats.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CATALOGUE",
    "CERTIFICATE_HEADERS",
    "CLIENT_ADDRESS_HEADERS",
    "Carries",
    "CatalogueEntry",
    "catalogued",
]


class Carries(StrEnum):
    CERTIFICATE = "certificate"  # the leaf (or leaf and chain) in some encoding
    CHAIN = "chain"  # intermediates only
    VERDICT = "verdict"  # the terminator's "verified" (or not)
    IDENTITY = "identity"  # a name, serial, fingerprint or validity taken from the certificate


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    carries: Carries
    set_by: str


def _entries(set_by: str, *pairs: tuple[str, Carries]) -> tuple[CatalogueEntry, ...]:
    return tuple(CatalogueEntry(name, carries, set_by) for name, carries in pairs)


_C, _CH, _V, _I = Carries.CERTIFICATE, Carries.CHAIN, Carries.VERDICT, Carries.IDENTITY

CATALOGUE: tuple[CatalogueEntry, ...] = (
    *_entries(
        "nginx (the usual proxy_set_header names), HAProxy",
        ("X-SSL-Client-Cert", _C),
        ("X-SSL-Client-Verify", _V),
        ("X-SSL-Client-S-DN", _I),
        ("X-SSL-Client-I-DN", _I),
        ("X-SSL-Client-DN", _I),
        ("X-SSL-Client-Serial", _I),
        ("X-SSL-Client-Fingerprint", _I),
        ("X-SSL-Client-Used", _V),
        ("X-SSL-Client-SHA1", _I),
    ),
    *_entries(
        "Kubernetes ingress-nginx",
        ("ssl-client-cert", _C),
        ("ssl-client-verify", _V),
        ("ssl-client-subject-dn", _I),
        ("ssl-client-issuer-dn", _I),
    ),
    *_entries(
        "Apache httpd mod_headers (common names)",
        ("SSL-Client-Cert", _C),
        ("SSL-Client-Verify", _V),
        ("SSL-Client-S-DN", _I),
        ("SSL-Client-I-DN", _I),
    ),
    *_entries("Envoy, Istio", ("X-Forwarded-Client-Cert", _C)),
    *_entries(
        "Traefik passTLSClientCert",
        ("X-Forwarded-Tls-Client-Cert", _C),
        ("X-Forwarded-Tls-Client-Cert-Info", _I),
    ),
    *_entries(
        "Caddy ({http.request.tls.client.certificate_der_base64}, hookshield proxy-config caddy)",
        ("X-Caddy-Client-Cert", _C),
    ),
    *_entries(
        "AWS Application Load Balancer",
        ("X-Amzn-Mtls-Clientcert", _C),
        ("X-Amzn-Mtls-Clientcert-Leaf", _C),
        ("X-Amzn-Mtls-Clientcert-Subject", _I),
        ("X-Amzn-Mtls-Clientcert-Issuer", _I),
        ("X-Amzn-Mtls-Clientcert-Serial-Number", _I),
        ("X-Amzn-Mtls-Clientcert-Validity", _I),
    ),
    *_entries(
        "RFC 9440 (Cloudflare transform rules, others)",
        ("Client-Cert", _C),
        ("Client-Cert-Chain", _CH),
    ),
    *_entries(
        "Google Cloud load balancers (custom mTLS headers, usual names)",
        ("X-Client-Cert-Leaf", _C),
        ("X-Client-Cert-Chain", _CH),
        ("X-Client-Cert-Chain-Verified", _V),
        ("X-Client-Cert-Present", _V),
        ("X-Client-Cert-Error", _V),
        ("X-Client-Cert-Hash", _I),
        ("X-Client-Cert-Spiffe", _I),
        ("X-Client-Cert-Uri-Sans", _I),
        ("X-Client-Cert-Dnsname-Sans", _I),
        ("X-Client-Cert-Serial-Number", _I),
        ("X-Client-Cert-Valid-Not-Before", _I),
        ("X-Client-Cert-Valid-Not-After", _I),
    ),
    *_entries(
        "Cloudflare",
        ("Cf-Client-Cert-Der-Base64", _C),
        ("cf-cert-verified", _V),
        ("cf-cert-presented", _V),
        ("cf-cert-revoked", _V),
        ("cf-cert-subject-dn", _I),
        ("cf-cert-issuer-dn", _I),
        ("cf-cert-serial", _I),
        ("cf-cert-fingerprint-sha256", _I),
    ),
    *_entries(
        "common integrations (Azure App Service, Caddy recipes, hand-written glue)",
        ("X-ARR-ClientCert", _C),
        ("X-Client-Cert", _C),
        ("X-Client-Certificate", _C),
        ("X-SSL-Cert", _C),
        ("X-SSL-Client", _C),
        ("X-Client-Verify", _V),
        ("X-Client-DN", _I),
        ("X-Client-CN", _I),
        ("X-Client-Cert-Fingerprint", _I),
    ),
)

CERTIFICATE_HEADERS: tuple[str, ...] = tuple(entry.name for entry in CATALOGUE)

# What says who the client is by address: replaced by a terminator, never passed on from a client.
CLIENT_ADDRESS_HEADERS: tuple[str, ...] = ("X-Forwarded-For", "Forwarded", "X-Real-IP")

_LOWER = frozenset(name.lower() for name in CERTIFICATE_HEADERS)


def catalogued(name: str) -> bool:
    """Whether a header name (any case, ``-`` or ``_``) is in the catalogue."""
    return name.lower().replace("_", "-") in _LOWER
