"""``ScanContext``: every request a check sends goes through here.

The request budget, the concurrency limit, signing, evidence trimming and the throttling rule
live in one place: a probe answered 429 (or 503 with ``Retry-After``) proves nothing about what
it probed, so it raises ``Throttled`` and the engine marks the check inconclusive.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from hookshield.core.signatures import signed_headers
from hookshield.scanner.model import Evidence
from hookshield.scanner.profiles import ClientFiles, Profile, Profiles

__all__ = ["BudgetExhausted", "Reply", "ScanConfig", "ScanContext", "Throttled"]

EXCERPT = 300
_CONNECTION_ERRORS = (httpx.TransportError, ssl.SSLError, OSError)
# How much of an answer is kept: enough to find a framework's debug page (Django's puts its
# exception summary about 5 KiB in), bounded so a hostile target cannot fill the scanner's memory.
MAX_REPLY_BODY = 64 * 1024


async def _read_capped(response: httpx.Response) -> str:
    """The start of the answer's body, at most MAX_REPLY_BODY bytes; the rest is never read.

    Raw bytes: requests ask for ``Accept-Encoding: identity``, so nothing is decompressed (a
    compressed answer could expand without bound).
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_REPLY_BODY:
            break
    body = b"".join(chunks)[:MAX_REPLY_BODY]
    try:
        return body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


class BudgetExhausted(Exception):
    """The scan's request budget is spent; no further request is sent."""


class Throttled(Exception):
    """The target throttled a probe; the probe proves nothing."""


@dataclass(frozen=True, slots=True)
class ScanConfig:
    url: str
    legit: ClientFiles | None = None
    foreign: ClientFiles | None = None
    mint_ca: ClientFiles | None = None
    ca: str | None = None  # bundle that signs the server certificate
    signing_secret: str | None = None
    payload: bytes | None = None
    budget: int = 500
    burst: int = 120
    timeout: float = 10.0
    concurrency: int = 4
    max_duration: float | None = None
    checks: tuple[str, ...] = ()  # empty: all
    min_coverage: float = 1.0  # below it (checks run / applicable) the scan is "incomplete"

    @property
    def https(self) -> bool:
        return urlsplit(self.url).scheme == "https"


@dataclass(slots=True)
class Reply:
    request: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    elapsed_ms: float = 0.0
    error: str | None = None  # the transport failure, when there was no HTTP answer

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def throttled(self) -> bool:
        return self.status == 429 or (self.status == 503 and "retry-after" in self.headers)

    def evidence(self, note: str = "") -> Evidence:
        """The reply as a finding's evidence; ``note`` says what about it is the flaw."""
        excerpt = self.body[:EXCERPT] if self.status is not None else (self.error or "")
        request = f"{self.request}: {note}" if note else self.request
        return Evidence(request, self.status, excerpt, self.elapsed_ms)


class ScanContext:
    def __init__(self, config: ScanConfig, profiles: Profiles) -> None:
        self.config = config
        self.profiles = profiles
        self.canary = f"hookshield-canary-{secrets.token_hex(8)}"
        self.payload = (
            config.payload
            if config.payload is not None
            else json.dumps(
                {
                    "type": "hookshield.scan",
                    "id": f"evt_{uuid.uuid4().hex[:16]}",
                    "canary": self.canary,
                }
            ).encode()
        )
        self.sent = 0
        self.throttled = 0
        self.replies: list[Reply] = []
        self.baseline: Reply | None = None
        self._budget_lock = asyncio.Lock()
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.memo: dict[str, Any] = {}  # results several checks share (the rate-limit burst)
        self.burst: tuple[int, float] | None = None  # (requests, seconds) of the burst

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    @property
    def remaining(self) -> int:
        return self.config.budget - self.sent

    async def _spend(self, count: int = 1) -> None:
        async with self._budget_lock:
            if self.sent + count > self.config.budget:
                raise BudgetExhausted(f"request budget of {self.config.budget} spent")
            self.sent += count

    def _client(self, profile: Profile | ClientFiles) -> httpx.AsyncClient:
        files = profile if isinstance(profile, ClientFiles) else self.profiles.files(profile)
        key = str(files.cert) if files else "none"
        if key not in self._clients:
            self._clients[key] = httpx.AsyncClient(
                verify=self.profiles.context(profile),
                timeout=self.config.timeout,
                limits=httpx.Limits(max_connections=max(self.config.concurrency, 8)),
            )
        return self._clients[key]

    def signed_headers(
        self, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        assert self.config.signing_secret is not None
        return signed_headers(self.config.signing_secret, body, msg_id=msg_id, timestamp=timestamp)

    async def deliver(
        self,
        profile: Profile | ClientFiles = Profile.LEGIT,
        *,
        body: bytes | None = None,
        method: str = "POST",
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
        sign: bool = True,
        url: str | None = None,
        label: str = "",
        throttle_is_evidence: bool = False,
    ) -> Reply:
        """Send one request like the baseline, changed only as the arguments say."""
        content = self.payload if body is None else body
        all_headers = self._request_headers(
            content, method=method, content_type=content_type, sign=sign, extra=headers
        )
        who = profile if isinstance(profile, Profile) else "minted certificate"
        target = url or self.config.url
        summary = f"{method} {urlsplit(target).path or '/'} ({label or who})"
        await self._spend()
        reply = await self._send(profile, method, target, content, all_headers, summary)
        self.replies.append(reply)
        if reply.throttled and not throttle_is_evidence:
            self.throttled += 1
            raise Throttled(f"{summary} answered {reply.status}")
        return reply

    def _request_headers(
        self,
        content: bytes,
        *,
        method: str,
        content_type: str | None,
        sign: bool,
        extra: Mapping[str, str] | None,
    ) -> dict[str, str]:
        # Caller's headers last: a probe may replace any of the defaults, signature included.
        all_headers: dict[str, str] = {"Accept-Encoding": "identity"}
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        if sign and self.config.signing_secret and method == "POST":
            all_headers.update(self.signed_headers(content))
        all_headers.update(extra or {})
        return all_headers

    async def _send(
        self,
        profile: Profile | ClientFiles,
        method: str,
        target: str,
        content: bytes,
        headers: dict[str, str],
        summary: str,
    ) -> Reply:
        """One request under the concurrency limit; no HTTP answer is a reply with ``error``."""
        async with self._semaphore:
            started = time.perf_counter()
            try:
                async with self._client(profile).stream(
                    method,
                    target,
                    content=content if method not in ("GET", "HEAD") else None,
                    headers=headers,
                ) as response:
                    text = await _read_capped(response)
            except _CONNECTION_ERRORS as exc:
                return Reply(
                    summary,
                    error=f"{type(exc).__name__}: {exc}"[:EXCERPT],
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
            return Reply(
                summary,
                response.status_code,
                dict(response.headers.items()),
                text,
                (time.perf_counter() - started) * 1000,
            )

    async def handshake(
        self, context: ssl.SSLContext, *, send_request: bool = True
    ) -> tuple[bool, str, bytes | None]:
        """A bare TLS connection to the target: (completed, detail, server certificate DER).

        With ``send_request`` an HTTP request is written and one byte read: under TLS 1.3 a
        server reports a missing client certificate only after the client's Finished.
        """
        await self._spend()
        parts = urlsplit(self.config.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 443
        return await asyncio.to_thread(
            _handshake, host, port, context, send_request, self.config.timeout
        )


def _handshake(
    host: str, port: int, context: ssl.SSLContext, send_request: bool, timeout: float
) -> tuple[bool, str, bytes | None]:
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            version = tls.version() or "?"
            if send_request:
                tls.sendall(
                    f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                first = tls.recv(1)
                if not first:
                    return False, f"{version}: the server closed the connection", der
            return True, version, der
    except ssl.SSLError as exc:
        return False, f"{exc.reason or exc}", None
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc}", None
