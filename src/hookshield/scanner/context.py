"""``ScanContext``: every request a check sends goes through here.

The request budget, the concurrency limit, signing, evidence trimming and the throttling rule
live in one place: a probe answered 429 (or 503 with ``Retry-After``) proves nothing about what
it probed, so it raises ``Throttled`` and the engine marks the check inconclusive.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import html
import json
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from hookshield.scanner.model import Evidence
from hookshield.scanner.profiles import ClientFiles, Profile, Profiles
from hookshield.scanner.signers import DEFAULT_HMAC_HEADER, Scheme, Signer

__all__ = ["BudgetExhausted", "NoAnswer", "Reply", "ScanConfig", "ScanContext", "Throttled"]

EXCERPT = 300
_CONNECTION_ERRORS = (httpx.TransportError, ssl.SSLError, OSError)
# Failures in which the target took no part: nothing listening, no route, no name, no answer in
# time. Unlike a TLS alert or a connection the server closed, they refuse nothing.
_SILENT_ERRORS = (
    httpx.TimeoutException,
    TimeoutError,
    ConnectionRefusedError,
    socket.gaierror,
)
_SILENT_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})


def _silent(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from: httpx wraps the socket's error) is one of
    the failures in which the target took no part."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx's error, httpcore's, the socket's
        if seen is None:
            break
        if isinstance(seen, BaseExceptionGroup):  # one failure per address of the host
            return all(_silent(each) for each in seen.exceptions)
        if isinstance(seen, _SILENT_ERRORS):
            return True
        if isinstance(seen, OSError) and seen.errno in _SILENT_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# How much of an answer is kept: enough to find a framework's debug page (Django's puts its
# exception summary about 5 KiB in), bounded so a hostile target cannot fill the scanner's memory.
MAX_REPLY_BODY = 64 * 1024
# What terminators answer over a completed handshake that lacked a valid client certificate:
# nginx with ssl_verify_client on (400 "No required SSL certificate was sent", 495 "The SSL
# certificate error", both sent as 400); Apache httpd when TLS 1.3 post-handshake
# authentication fails (403).
_TERMINATOR_MARKS = (
    "No required SSL certificate was sent",
    "The SSL certificate error",
    "Cannot perform Post-Handshake Authentication",
)


async def _read_capped(response: httpx.Response) -> str:
    """The start of the answer's body, at most MAX_REPLY_BODY bytes; the rest is never read,
    and a body cut off (a timeout, a dropped connection) is what arrived of it.

    Raw bytes: requests ask for ``Accept-Encoding: identity``, so nothing is decompressed (a
    compressed answer could expand without bound).
    """
    chunks: list[bytes] = []
    size = 0
    if response.is_stream_consumed:  # built in memory (an httpx.MockTransport's answer)
        chunks.append(response.content)
    else:
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_REPLY_BODY:
                    break
        except _CONNECTION_ERRORS:
            pass  # the status arrived: the answer stands, with what came of its body
    body = b"".join(chunks)[:MAX_REPLY_BODY]
    try:
        return body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


JSON = "application/json"
# --header names whose values are no secret: shown in reports as sent.
_NOT_SECRET = frozenset({"accept", "content-type", "user-agent", "x-github-event"})


class BudgetExhausted(Exception):
    """The scan's request budget is spent; no further request is sent."""


class Throttled(Exception):
    """The target throttled a probe; the probe proves nothing."""


class NoAnswer(Exception):
    """A probe got no answer at all (nothing listening, or none in time): it proves nothing,
    neither a flaw nor its absence, where a refused connection or TLS alert is a refusal."""


def _in_json(text: str) -> str:
    return json.dumps(text)[1:-1]


@dataclass(frozen=True, slots=True)
class ScanConfig:
    url: str
    legit: ClientFiles | None = None
    foreign: ClientFiles | None = None
    mint_ca: ClientFiles | None = None
    ca: str | None = None  # bundle that signs the server certificate
    signing_secret: str | None = field(default=None, repr=False)
    signature_scheme: Scheme = Scheme.STANDARD
    signature_header: str = DEFAULT_HMAC_HEADER  # the generic HMAC scheme's header
    # Sent with every request as given (a receiver's own authentication: API keys, basic auth,
    # event names); their values never appear in a report.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    rate: float | None = None  # most requests per second, every probe included
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

    def runs(self, check_id: str) -> bool:
        """Whether ``check_id`` is part of this scan."""
        return not self.checks or check_id in self.checks

    @property
    def secrets(self) -> tuple[str, ...]:
        """What a report must never show: the signing secret, every --header value but those
        of headers that carry no secret (and the credentials part of one like "Basic <...>"),
        the URL's user info and the Basic credentials made of it."""
        found = [self.signing_secret or ""]
        for name, value in self.headers:
            if name.lower() not in _NOT_SECRET:
                found += [value, value.partition(" ")[2]]
        parts = urlsplit(self.url)
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
            # As given, decoded, as httpx sends it in the URL (percent-encoded again) and in the
            # Authorization header it makes of it.
            sent = httpx.URL(self.url).userinfo.decode("ascii", "replace")
            found += [parts.username, user, parts.password or "", password, sent]
            found += sent.split(":", 1)
            found.append(base64.b64encode(f"{user}:{password}".encode()).decode())
        # Too short to be a secret, and replacing it would garble the report.
        kept = [s for s in found if len(s) >= 6]
        # As an answer may echo them: escaped in an HTML page, percent-encoded, in a JSON string.
        kept += [form for s in kept for form in (html.escape(s), quote(s, safe=""), _in_json(s))]
        return tuple(sorted(set(kept), key=len, reverse=True))

    def signer(self) -> Signer | None:
        if self.signing_secret is None:
            return None
        return Signer(self.signature_scheme, self.signing_secret, self.signature_header)


@dataclass(slots=True)
class Reply:
    request: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    elapsed_ms: float = 0.0
    error: str | None = None  # the transport failure, when there was no HTTP answer
    silent: bool = False  # that failure was one the target took no part in (see NoAnswer)

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def throttled(self) -> bool:
        return self.status == 429 or (self.status == 503 and "retry-after" in self.headers)

    @property
    def terminator_refusal(self) -> str | None:
        """How the TLS terminator, not the application, refused this request, if it did.

        A request refused there never reached the application: it proves nothing about what
        the application does with the rest of the request.
        """
        if self.status is None:
            return f"no HTTP answer ({self.error or 'the connection failed'})"
        if self.status in (400, 403) and any(mark in self.body for mark in _TERMINATOR_MARKS):
            return f"HTTP {self.status} from the TLS terminator ({self.body_title})"
        return None

    @property
    def body_title(self) -> str:
        start = self.body.find("<title>")
        end = self.body.find("</title>", start)
        return self.body[start + 7 : end].strip() if 0 <= start < end else self.body[:80]

    def evidence(self, note: str = "", *, control: Reply | None = None) -> Evidence:
        """The reply as a finding's evidence; ``note`` says what about it is the flaw and
        ``control`` is the same request without the property under test."""
        excerpt = self.body[:EXCERPT] if self.status is not None else (self.error or "")
        request = f"{self.request}: {note}" if note else self.request
        return Evidence(
            request,
            self.status,
            excerpt,
            self.elapsed_ms,
            None if control is None else control.evidence(),
        )


class ScanContext:
    def __init__(
        self,
        config: ScanConfig,
        profiles: Profiles,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.profiles = profiles
        self.notice = notice or (lambda message: None)
        # --rate: request i may start no earlier than i / rate seconds into the scan.
        self._interval = 1 / config.rate if config.rate else 0.0
        self._next_start = 0.0
        self._pace_lock = asyncio.Lock()
        self._transport = transport  # tests: an httpx.MockTransport answers every request
        self.signer = config.signer()
        self._secrets = config.secrets  # derived once: every answer is redacted with them
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
        self._controls: dict[Profile, Reply | NoAnswer] = {}
        self._control_locks: dict[Profile, asyncio.Lock] = {}

    async def control(self, profile: Profile) -> Reply:
        """``profile``'s plain delivery, sent once per scan: the control several checks compare
        their probes with (the same request without the property each one tests)."""
        lock = self._control_locks.setdefault(profile, asyncio.Lock())
        async with lock:
            if profile not in self._controls:
                label = f"{profile}, nothing else changed (control)"
                try:
                    self._controls[profile] = await self.deliver(profile, label=label)
                except NoAnswer as exc:  # every check that asks is told, none sends it again
                    self._controls[profile] = exc
            control = self._controls[profile]
            if isinstance(control, NoAnswer):
                raise control
            return control

    @property
    def baseline_profile(self) -> Profile:
        """Who sends the baseline: the legitimate identity, or no certificate without one."""
        return Profile.LEGIT if self.config.legit else Profile.NO_CERT

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
        await self._pace()

    async def _pace(self) -> None:
        """Wait for this request's slot under --rate (every request passes here)."""
        if not self._interval:
            return
        async with self._pace_lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)

    def _client(self, profile: Profile | ClientFiles) -> httpx.AsyncClient:
        files = profile if isinstance(profile, ClientFiles) else self.profiles.files(profile)
        key = str(files.cert) if files else "none"
        if key not in self._clients:
            self._clients[key] = httpx.AsyncClient(
                verify=self.profiles.context(profile),
                transport=self._transport,
                timeout=self.config.timeout,
                limits=httpx.Limits(max_connections=max(self.config.concurrency, 8)),
            )
        return self._clients[key]

    def signed_headers(
        self, body: bytes, *, delivery_id: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """Headers that sign ``body`` as one delivery per ``--signature-scheme``."""
        assert self.signer is not None  # Need.SIGNING_SECRET
        return self.signer.headers(body, delivery_id=delivery_id, timestamp=timestamp)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def deliver(
        self,
        profile: Profile | ClientFiles = Profile.LEGIT,
        *,
        body: bytes | None = None,
        method: str = "POST",
        content_type: str | None = JSON,
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
        if reply.silent:
            raise NoAnswer(f"{summary}: no answer ({reply.error})")
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
    ) -> httpx.Headers:
        # The user's --header values, then what the probe changes: a probe's own content type
        # (not the default one) and its headers win, whatever the spelling of their names
        # (httpx.Headers replaces a name in any letter case).
        headers = httpx.Headers({"Accept-Encoding": "identity"})
        headers.update(self.config.headers)
        if content_type is None:
            headers.pop("Content-Type", None)
        elif content_type != JSON or "Content-Type" not in headers:
            headers["Content-Type"] = content_type
        if sign and self.signer is not None and method == "POST":
            headers.update(self.signed_headers(content))
        headers.update(extra or {})
        return headers

    async def _send(
        self,
        profile: Profile | ClientFiles,
        method: str,
        target: str,
        content: bytes,
        headers: httpx.Headers,
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
                    error=self.redact(f"{type(exc).__name__}: {exc}")[:EXCERPT],
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                    silent=_silent(exc),
                )
            # Redacted whole, before any excerpt is cut: a secret the answer echoes (a debug page
            # lists the request's headers) must not survive in part at the cut either.
            return Reply(
                summary,
                response.status_code,
                dict(response.headers.items()),
                self.redact(text),
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
        if _silent(exc):
            raise NoAnswer(f"TLS handshake: no answer ({type(exc).__name__}: {exc})") from exc
        return False, f"{type(exc).__name__}: {exc}", None
