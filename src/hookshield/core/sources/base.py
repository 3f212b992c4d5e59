"""What every certificate source shares: the request view, the protocol, header plumbing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote

from hookshield.core.certs import PresentedChain, check_size, pem_blocks
from hookshield.core.errors import CertificateParseError, ProxyVerifyError

__all__ = ["HeaderSource", "Inbound", "Source", "meta_key", "pem_urlenc"]

DECODE_CACHE_SIZE = 256
DECODE_CACHE_MAX_TEXT = 8 * 1024


def _no_body(size: int) -> bytes:
    del size
    return b""


@dataclass(slots=True)
class Inbound:
    """The parts of a request the guard reads, free of any web framework.

    Built once per request and only read after (not frozen: a frozen dataclass's ``__init__``
    costs about 1 µs more, on every request).

    Attributes:
        peer: the TCP peer's address (``REMOTE_ADDR``), never a forwarded-for value.
        meta: the WSGI environ, or Django's ``request.META`` (headers as ``HTTP_*`` keys, and
            ``CONTENT_TYPE`` / ``CONTENT_LENGTH``).
        scope: the ASGI scope when the request came over ASGI.
        method: the HTTP method.
        read: reads up to n bytes of the body (the input step never asks for more than
            ``MAX_BODY`` + 1).
    """

    peer: str
    meta: Mapping[str, Any]
    scope: Mapping[str, Any] | None = None
    method: str = "POST"
    read: Callable[[int], bytes] = _no_body


class Source(Protocol):
    """Takes the client certificate (and chain) from where a deployment puts it.

    ``forwarded`` sources read headers that a client could send too: the guard consults them only
    for requests from a trusted proxy. ``take`` returns None when no certificate was presented and
    raises ``SourceError`` (and nothing else) when what was presented cannot be used.
    """

    name: ClassVar[str]
    forwarded: ClassVar[bool]

    def meta_keys(self) -> tuple[str, ...]: ...

    def take(self, inbound: Inbound) -> PresentedChain | None: ...


def meta_key(header: str) -> str:
    """The ``request.META`` / WSGI environ key of an HTTP header name."""
    return "HTTP_" + header.upper().replace("-", "_")


def pem_urlenc(value: str, what: str) -> tuple[bytes, ...]:
    """Percent-encoded PEM (nginx, Envoy, AWS ALB): ``unquote``, never ``unquote_plus``.

    ALB leaves ``+`` unescaped, so turning ``+`` into a space would corrupt the base64.
    """
    try:
        text = unquote(value, errors="strict")
    except UnicodeDecodeError as exc:
        raise CertificateParseError(f"{what} percent-decodes to invalid UTF-8") from exc
    return pem_blocks(text, what)


class HeaderSource(ABC):
    """A source reading a certificate header set by a terminator, with an optional verdict header.

    Subclasses set the defaults and implement ``decode`` (raw header text to DER certificates,
    or None for the terminator's own "no certificate" value).
    """

    name: ClassVar[str]
    forwarded: ClassVar[bool] = True
    default_header: ClassVar[str]
    default_verify_header: ClassVar[str | None] = None
    # Verdict values meaning "verified"; any other value refuses the certificate.
    verified_values: ClassVar[frozenset[str]] = frozenset()
    # Verdict values meaning "no certificate was presented".
    absent_values: ClassVar[frozenset[str]] = frozenset()
    # Formats whose single value never contains ',' refuse one: it means a client's copy of the
    # header was joined with the proxy's (Django's ASGI handler and WSGI servers join repeats).
    single_value: ClassVar[bool] = True

    def __init__(
        self,
        *,
        cert_header: str | None = None,
        verify_header: str | None = None,
        chain_header: str | None = None,
    ) -> None:
        self.cert_header = cert_header or self.default_header
        self.verify_header = verify_header or self.default_verify_header
        self.chain_header = chain_header
        self._cert_key = meta_key(self.cert_header)
        self._verify_key = meta_key(self.verify_header) if self.verify_header else None
        self._chain_key = meta_key(chain_header) if chain_header else None
        # The same proxy forwards the same few certificates over and over: what the headers'
        # values make (checked, percent-decoded, base64, hashed) is kept per distinct values,
        # as they came. Refusals are not kept; values above DECODE_CACHE_MAX_TEXT are not
        # either, and the cache is emptied when full, which bounds its memory.
        self._taken: dict[tuple[Any, Any, Any], PresentedChain | None] = {}

    def meta_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self._cert_key, self._verify_key, self._chain_key) if k)

    def header(self, inbound: Inbound, key: str, name: str) -> str | None:
        value = inbound.meta.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise CertificateParseError(f"{name} is not text")
        check_size(value, name)
        return value.strip()

    def take(self, inbound: Inbound) -> PresentedChain | None:
        meta, verify_key, chain_key = inbound.meta, self._verify_key, self._chain_key
        values = (
            meta.get(self._cert_key),
            meta.get(verify_key) if verify_key else None,
            meta.get(chain_key) if chain_key else None,
        )
        try:
            return self._taken[values]
        except (KeyError, TypeError):  # not seen yet, or not text (refused below)
            pass
        chain = self._take(inbound)
        if sum(len(value) for value in values if value is not None) <= DECODE_CACHE_MAX_TEXT:
            if len(self._taken) >= DECODE_CACHE_SIZE:
                self._taken.clear()
            self._taken[values] = chain
        return chain

    def _take(self, inbound: Inbound) -> PresentedChain | None:
        raw = self.header(inbound, self._cert_key, self.cert_header)
        verdict = None
        if self._verify_key is not None and self.verify_header is not None:
            verdict = self.header(inbound, self._verify_key, self.verify_header)
        if not raw:
            return None
        self._check_verdict(verdict)
        if self.single_value and "," in raw:
            raise CertificateParseError(f"{self.cert_header} holds several values")
        chain_raw = ""
        if self._chain_key is not None and self.chain_header is not None:
            chain_raw = self.header(inbound, self._chain_key, self.chain_header) or ""
        return self._present(raw, chain_raw)

    def _check_verdict(self, verdict: str | None) -> None:
        """A certificate is believed only with the terminator's "verified" (if it sends one)."""
        if verdict is not None and verdict in self.absent_values:
            raise ProxyVerifyError(
                f"{self.verify_header} says no certificate was presented, "
                f"yet {self.cert_header} is set"
            )
        if self.verify_header is not None and verdict not in self.verified_values:
            shown = "absent" if verdict is None else repr(verdict[:120])
            raise ProxyVerifyError(f"{self.verify_header} is {shown}, not a verified verdict")

    def _present(self, raw: str, chain_raw: str) -> PresentedChain | None:
        ders = self.decode(raw)
        if ders is None:
            return None
        return PresentedChain(ders + self.decode_chain(chain_raw), self.name)

    def decode_chain(self, raw: str) -> tuple[bytes, ...]:
        """Intermediates from the separate chain header (RFC 9440 style), if the source has one."""
        del raw
        return ()

    @abstractmethod
    def decode(self, raw: str) -> tuple[bytes, ...] | None:
        """DER certificates (leaf first) from the header, or None for "no certificate"."""
