"""How each TLS terminator writes a client certificate into a header.

The inverse of ``hookshield.core.sources``: tests use it to build what a proxy would send, and the
scanner to forge what a client might try to smuggle past one. Formats per
``docs/certificate-formats.md``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hookshield.core.certs import fingerprint

__all__ = [
    "alb",
    "b64der",
    "nginx_escaped",
    "pem",
    "rfc9440",
    "rfc9440_list",
    "traefik",
    "xfcc_element",
]


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def nginx_escaped(*certs: x509.Certificate) -> str:
    """``$ssl_client_escaped_cert``: every byte but ``A-Za-z0-9-._~`` percent-encoded.

    Envoy's ``Cert``/``Chain`` encoding of PEM gives the same text.
    """
    return quote("".join(pem(c) for c in certs), safe="")


def alb(*certs: x509.Certificate) -> str:
    """AWS ALB: URL-encoded PEM that leaves ``+``, ``=`` and ``/`` unescaped."""
    return quote("".join(pem(c) for c in certs), safe="+=/")


def b64der(cert: x509.Certificate) -> str:
    """HAProxy ``ssl_c_der,base64``, Traefik >= 2.10, Caddy: standard base64 of the DER."""
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def traefik(certs: Sequence[x509.Certificate], *, escaped: bool = False) -> str:
    """Traefik: base64 DER per certificate, ``,``-joined; query-escaped before v2.10."""
    items = [b64der(c) for c in certs]
    return ",".join(quote(i, safe="") if escaped else i for i in items)


def rfc9440(cert: x509.Certificate) -> str:
    """RFC 9440 ``Client-Cert``: a structured-field byte sequence."""
    return f":{b64der(cert)}:"


def rfc9440_list(certs: Sequence[x509.Certificate]) -> str:
    """RFC 9440 ``Client-Cert-Chain``: a list of byte sequences."""
    return ", ".join(rfc9440(c) for c in certs)


def _xfcc_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def xfcc_element(
    cert: x509.Certificate,
    *,
    chain: Sequence[x509.Certificate] = (),
    by: str | None = None,
    with_cert: bool = True,
) -> str:
    """One Envoy XFCC element, as written with Subject, URI, DNS and Cert (or Chain) on."""
    der = cert.public_bytes(Encoding.DER)
    pairs = []
    if by is not None:
        pairs.append(f"By={by}")
    pairs.append(f"Hash={fingerprint(der)}")
    if with_cert:
        pairs.append(f"Cert={_xfcc_quote(nginx_escaped(cert))}")
        if chain:
            pairs.append(f"Chain={_xfcc_quote(nginx_escaped(cert, *chain))}")
    pairs.append(f"Subject={_xfcc_quote(cert.subject.rfc4514_string())}")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier) if san else []
    pairs.extend(f"URI={u}" for u in uris or [""])
    if san:
        pairs.extend(f"DNS={d}" for d in san.get_values_for_type(x509.DNSName))
    return ";".join(pairs)
