"""Envoy / Istio ``x-forwarded-client-cert`` (XFCC).

Grammar (Envoy docs and ``mutateXfccRequestHeader``)::

    xfcc    = element *( "," element )      one element per hop, each proxy appends at the end
    element = pair *( ";" pair )
    pair    = key "=" value                 keys case-insensitive, may repeat (URI, DNS, By)
    value   = quoted / bare                 quoted: '"' ... '"' with '\\' escaping the next char

The element to believe is the **last** one: it is the one the nearest proxy (the trusted one that
delivered the request) wrote. Earlier elements came from further downstream and, under
``APPEND_FORWARD`` (the Istio sidecar default), may be the client's own invention. The element
must carry ``Cert`` or ``Chain`` (``forward_client_cert_details`` with ``cert: true``): names
alone are never believed, the guard verifies the certificate itself.

The parser is one left-to-right pass over at most 64 KiB with bounded element and pair counts,
so hostile quoting costs linear time.
"""

from __future__ import annotations

import hmac
import re

from hookshield.core.certs import fingerprint
from hookshield.core.errors import CertificateParseError
from hookshield.core.sources.base import HeaderSource, pem_urlenc

__all__ = ["XfccSource", "parse_xfcc"]

MAX_ELEMENTS = 32
MAX_PAIRS = 64

Element = tuple[tuple[str, str], ...]

_KEY_END = re.compile(r'[=;,"]')
_SEPARATOR = re.compile(r"[;,]")
_QUOTE_OR_ESCAPE = re.compile(r'[\\"]')


def parse_xfcc(header: str) -> tuple[Element, ...]:
    """Split an XFCC header into elements of ``(lowercased key, value)`` pairs."""
    elements: list[Element] = []
    pairs: list[tuple[str, str]] = []
    n = len(header)
    i = 0
    while True:
        key, i = _key(header, i)
        if i < n and header[i] == '"':
            value, i = _quoted(header, i + 1)
        else:
            value, i = _bare(header, i)
        pairs.append((key, value))
        if len(pairs) > MAX_PAIRS:
            raise CertificateParseError(f"XFCC element with more than {MAX_PAIRS} pairs")
        if i >= n or header[i] == ",":
            elements.append(tuple(pairs))
            pairs = []
            if len(elements) > MAX_ELEMENTS:
                raise CertificateParseError(f"XFCC with more than {MAX_ELEMENTS} elements")
            if i >= n:
                return tuple(elements)
        i += 1  # past ';' or ','


def _key(header: str, i: int) -> tuple[str, int]:
    """The key starting at ``i`` (lowercased), and the offset just past its '='."""
    stop = _KEY_END.search(header, i)
    eq = stop.start() if stop else len(header)
    if eq >= len(header) or header[eq] != "=":
        raise CertificateParseError(f"XFCC pair without '=' at offset {i}")
    key = header[i:eq].strip().lower()
    if not key:
        raise CertificateParseError(f"XFCC pair with an empty key at offset {i}")
    return key, eq + 1


def _quoted(header: str, i: int) -> tuple[str, int]:
    """The quoted value whose content starts at ``i``; the offset after its closing quote."""
    n = len(header)
    chars: list[str] = []
    while True:
        stop = _QUOTE_OR_ESCAPE.search(header, i)
        if stop is None:
            raise CertificateParseError("XFCC quoted value is not closed")
        j = stop.start()
        chars.append(header[i:j])
        if header[j] == '"':
            i = j + 1
            break
        if j + 1 >= n:
            raise CertificateParseError("XFCC value ends in a lone backslash")
        chars.append(header[j + 1])
        i = j + 2
    if i < n and header[i] not in ";,":
        raise CertificateParseError(f"XFCC data after a quoted value at offset {i}")
    return "".join(chars), i


def _bare(header: str, i: int) -> tuple[str, int]:
    """The unquoted value starting at ``i``, up to the next ';' or ','."""
    stop = _SEPARATOR.search(header, i)
    end = stop.start() if stop else len(header)
    value = header[i:end]
    if '"' in value:
        raise CertificateParseError("XFCC bare value contains a quote")
    return value, end


class XfccSource(HeaderSource):
    name = "envoy-xfcc"
    default_header = "X-Forwarded-Client-Cert"
    single_value = False  # ',' separates hops

    def decode(self, raw: str) -> tuple[bytes, ...]:
        nearest = dict_of(parse_xfcc(raw)[-1])
        encoded = nearest.get("chain") or nearest.get("cert")
        if not encoded:
            raise CertificateParseError(
                "the nearest XFCC element carries no Cert or Chain; enable "
                "set_current_client_cert_details.cert in Envoy"
            )
        ders = pem_urlenc(encoded, "XFCC Cert")
        claimed = nearest.get("hash")
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        claimed_bytes = None if claimed is None else claimed.lower().encode("utf-8", "replace")
        expected = fingerprint(ders[0]).encode("ascii")
        if claimed_bytes is not None and not hmac.compare_digest(claimed_bytes, expected):
            raise CertificateParseError("XFCC Hash does not match the certificate it carries")
        return ders


def dict_of(element: Element) -> dict[str, str]:
    """Single-valued view of an element; a repeated Cert/Chain/Hash key is refused."""
    seen: dict[str, str] = {}
    for key, value in element:
        if key in seen and key in {"cert", "chain", "hash"}:
            raise CertificateParseError(f"XFCC element repeats {key!r}")
        seen.setdefault(key, value)
    return seen
