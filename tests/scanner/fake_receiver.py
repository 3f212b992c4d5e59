"""A fake webhook receiver for the scanner's unit tests: what it accepts is a few fields.

``Receiver`` describes an endpoint; its defaults are the hardened one (a terminator that asks for
a client certificate and forwards it, ``@webhook`` behind it: chain verified with the guard's own
``Verifier``, identity matched with its ``Allowlist``). Each field loosens one rule, the way a
real deployment gets it wrong. ``serve`` runs ``run_scan`` against it: every HTTP request goes to
an ``httpx.MockTransport`` that knows which client certificate the scanner presented (one
transport per certificate profile, the scanner opening one client per profile), and
``ScanContext.handshake`` answers from the same description instead of a socket.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from hookshield.core.certs import PresentedChain, load_chain
from hookshield.core.errors import CertificateParseError, Code, Rejection
from hookshield.core.identity import ClientIdentity
from hookshield.core.policy import Allowlist
from hookshield.core.signatures import SignatureVerifier
from hookshield.core.sources.base import pem_urlenc
from hookshield.core.verify import Verifier
from hookshield.pki import CertificateAuthority
from hookshield.scanner.context import ScanContext
from hookshield.scanner.profiles import ClientFiles, Profile
from tests.conftest import ALLOWED

PATH = "/hooks/payments/"
Chain = tuple[x509.Certificate, ...]  # what the scanner presented, leaf first; () for none
# What nginx answers itself: over plain HTTP to its TLS port, and without a client certificate
# under ssl_verify_client on (the scanner recognises the latter as the terminator's refusal).
NGINX_PLAIN_HTTP = "<html><head><title>400 The plain HTTP request was sent to HTTPS port</title>"
NGINX_NO_CERT = "<html><head><title>400 No required SSL certificate was sent</title></head></html>"
DJANGO_500 = (
    "<html><head><title>ValueError at /hooks/payments/</title></head><body>"
    '<div id="traceback">Traceback (most recent call last): ...</div>'
    "<p>You're seeing this error because you have <code>DEBUG = True</code> in your Django "
    "settings file.</p></body></html>"
)
DJANGO_404 = (
    "<html><body><p>Using the URLconf defined in <code>project.urls</code>, Django tried these "
    "URL patterns, in this order:</p><ol><li>hooks/payments/</li><li>admin/</li></ol>"
    "<p>You\u2019re seeing this error because you have <code>DEBUG = True</code> in your Django "
    "settings file.</p></body></html>"
)


class Trust(StrEnum):
    """What the receiver asks of a client certificate before it looks at the identity."""

    NOTHING = "no certificate needed"
    ANY_CERT = "any certificate, none verified, any identity"
    NAMES = "names compared, the chain never verified"
    ISSUER = "the chain verified, the validity dates ignored"
    CHAIN = "the chain verified now (the guard's Verifier)"


class Match(StrEnum):
    EXACT = "the guard's Allowlist"
    SUBSTRING = "an allowed name anywhere in a SAN or CN"
    DN_SPLIT = "'CN=<allowed>' among the subject DN string split on commas"
    ANY = "any identity"


@dataclass(frozen=True)
class Receiver:
    """A webhook endpoint; the defaults are the hardened one, each field loosens one rule."""

    # Who gets in.
    trust: Trust = Trust.CHAIN
    match: Match = Match.EXACT
    allow: tuple[str, ...] = (ALLOWED,)
    believes: str | None = None  # a certificate header it reads from the client (glue code)
    terminator_requires_cert: bool = False  # nginx ssl_verify_client on: its own 400
    unguarded: frozenset[str] = frozenset()  # methods the view serves before any check
    # Standard Webhooks signatures (the guard's SignatureVerifier), for the replay checks.
    secret: str | None = None  # None: signatures are not looked at
    requires_signature: bool = True  # else an unsigned delivery passes (a signed one is checked)
    tolerance: int = 300  # seconds a timestamp may be away from now
    remembers_ids: bool = True  # refuses a webhook-id it has taken before (409)
    # What it takes.
    content_types: frozenset[str] | None = frozenset({"application/json"})  # None: any
    max_body: int | None = 256 * 1024
    handles: tuple[type[Exception], ...] = (ValueError, RecursionError)  # others: a 500
    dies: bool = False  # what it does not handle kills the worker: no answer, not a 500
    # How it answers.
    debug: bool = False  # Django's DEBUG: tracebacks in 500s, URL patterns in 404s
    echo: bool = False  # answers with the delivery's body
    server: str = "nginx"
    throttle_after: int | None = None  # requests answered before it answers 429
    retry_after: bool = True  # its 429s say when to retry
    overload_after: int | None = None  # requests answered before 503s without Retry-After
    crash_after: int | None = None  # requests answered before 500s (a limiter that breaks)
    plain_http: bool = False  # serves http:// like https:// (else nginx's 400)
    plain_port_closed: bool = False  # nothing listens for http:// (connections refused)
    # TLS, for ScanContext.handshake.
    legacy_tls: bool = False  # completes TLS 1.0 and 1.1 handshakes
    handshake_requires_cert: bool = False  # aborts handshakes without a client certificate
    server_cert: str = "good"  # a key of World.server_certs
    server_trusted: bool = True  # its certificate verifies against --ca for the host

    def but(self, **changes: Any) -> Receiver:
        return dataclasses.replace(self, **changes)


HARDENED = Receiver()
# Any caller, anything, DEBUG on, the version in the Server header.
NAIVE = Receiver(
    trust=Trust.NOTHING,
    match=Match.ANY,
    content_types=None,
    max_body=None,
    handles=(),
    debug=True,
    server="nginx/1.2.3",
)


@dataclass(frozen=True)
class World:
    """The certificates a scan and its fake receiver share (built once per module)."""

    legit: ClientFiles  # SPIFFE ID ALLOWED, a CN and a DNS SAN
    foreign: ClientFiles  # another identity from the same CA
    mint: ClientFiles  # the client CA's certificate and key
    ca: str  # the bundle that signs the server certificate
    root: CertificateAuthority
    server_certs: dict[str, bytes] = field(default_factory=dict)  # name -> DER


def server_certs(root: CertificateAuthority) -> dict[str, bytes]:
    """Server certificates: a good one and the flaws tls.weak-server-cert looks for."""
    now = dt.datetime.now(dt.UTC)
    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    usages = (ExtendedKeyUsageOID.SERVER_AUTH,)
    issued = {
        "good": root.issue_server(["127.0.0.1"]),
        "expired": root.issue(
            sans=loopback,
            usages=usages,
            not_before=now - dt.timedelta(days=40),
            lifetime=dt.timedelta(days=30),
        ),
        "rsa-1024": root.issue(
            sans=loopback,
            usages=usages,
            key=rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
        ),
    }
    return {name: cert.certificate.public_bytes(Encoding.DER) for name, cert in issued.items()}


class Endpoint:
    """One scan's receiver: the description, the verifier, and the request count."""

    def __init__(self, receiver: Receiver, world: World) -> None:
        self.receiver = receiver
        self.world = world
        self.verifier = Verifier([world.root.certificate])
        self.allowlist = (
            Allowlist.parse(list(receiver.allow)) if receiver.match is Match.EXACT else None
        )
        self.signatures = (
            SignatureVerifier([receiver.secret], tolerance=receiver.tolerance)
            if receiver.secret
            else None
        )
        self.seen_ids: set[str] = set()
        self.count = 0

    # HTTP

    def handle(self, chain: Chain, request: httpx.Request) -> httpx.Response:
        response = self._answer(chain, request)
        response.headers["Server"] = self.receiver.server
        return response

    def _answer(self, chain: Chain, request: httpx.Request) -> httpx.Response:
        r = self.receiver
        if request.url.scheme == "http" and r.plain_port_closed:
            cause = ConnectionRefusedError(111, "Connection refused")
            raise httpx.ConnectError("All connection attempts failed") from cause
        if request.url.scheme == "http" and not r.plain_http:
            return httpx.Response(400, html=NGINX_PLAIN_HTTP)
        self.count += 1
        limited = self._limit()
        if limited is not None:
            return limited
        if request.url.path != PATH:
            return httpx.Response(404, html=DJANGO_404 if r.debug else "<h1>Not Found</h1>")
        if request.method in r.unguarded:
            return httpx.Response(200, json={"items": []})
        if not chain and r.terminator_requires_cert:
            return httpx.Response(400, html=NGINX_NO_CERT)
        refused = self._authenticate(request, chain)
        if refused is not None:
            return refused
        if request.method != "POST":
            return _refusal(405, "method_not_allowed")
        return self._signed(request) or self._take(request)

    def _limit(self) -> httpx.Response | None:
        r = self.receiver
        if r.throttle_after is not None and self.count > r.throttle_after:
            headers = {"Retry-After": "30"} if r.retry_after else {}
            return httpx.Response(429, json={"error": {"code": "rate_limited"}}, headers=headers)
        if r.overload_after is not None and self.count > r.overload_after:
            return httpx.Response(503, html="<h1>Service Unavailable</h1>")
        if r.crash_after is not None and self.count > r.crash_after:
            return self._crashed()
        return None

    def _crashed(self) -> httpx.Response:
        if self.receiver.dies:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(
            500, html=DJANGO_500 if self.receiver.debug else "<h1>Server Error</h1>"
        )

    def _authenticate(self, request: httpx.Request, chain: Chain) -> httpx.Response | None:
        r = self.receiver
        if r.trust is Trust.NOTHING:
            return None
        header = request.headers.get(r.believes) if r.believes else None
        if header is not None:
            try:
                ders = pem_urlenc(header, r.believes or "")
            except CertificateParseError:
                return _refusal(400, "client_cert_malformed")
            chain = tuple(x509.load_der_x509_certificate(d) for d in ders)
        if not chain:
            return _refusal(401, "client_cert_missing")
        if not self._trusted(chain):
            return _refusal(401, "client_cert_untrusted")
        if not self._allowed(ClientIdentity.from_certificate(chain[0])):
            return _refusal(403, "identity_not_allowed")
        return None

    def _trusted(self, chain: Chain) -> bool:
        presented = PresentedChain(tuple(c.public_bytes(Encoding.DER) for c in chain), "fake")
        trust = self.receiver.trust
        if trust is Trust.CHAIN:
            return not isinstance(self.verifier.verify(presented), Rejection)
        if trust is Trust.ISSUER:
            return self.verifier.issued_by_anchor(presented)
        return True  # ANY_CERT, NAMES: nothing verified

    def _allowed(self, identity: ClientIdentity) -> bool:
        if self.receiver.trust is Trust.ANY_CERT or self.receiver.match is Match.ANY:
            return True
        if self.allowlist is not None:
            return self.allowlist.match(identity) is not None
        if self.receiver.match is Match.DN_SPLIT:  # glue that reads the DN as a string
            parts = identity.subject.split(",")
            return any(f"CN={allowed}" in parts for allowed in self.receiver.allow)
        names = (*identity.uri_sans, *identity.dns_sans, *identity.common_names)
        return any(allowed in name for allowed in self.receiver.allow for name in names)

    def _signed(self, request: httpx.Request) -> httpx.Response | None:
        """The signature, its age and its webhook-id, when the receiver has a secret."""
        if self.signatures is None:
            return None
        meta = {
            f"HTTP_WEBHOOK_{part.upper()}": request.headers.get(f"webhook-{part}")
            for part in ("id", "timestamp", "signature")
        }
        verdict = self.signatures.verify(meta, request.content)
        if isinstance(verdict, Rejection):
            if verdict.code is Code.SIGNATURE_MISSING and not self.receiver.requires_signature:
                return None
            return _refusal(401, str(verdict.code))
        if self.receiver.remembers_ids and verdict in self.seen_ids:
            return _refusal(409, str(Code.DELIVERY_REPLAYED))
        self.seen_ids.add(verdict)
        return None

    def _take(self, request: httpx.Request) -> httpx.Response:
        """The view: content type, size, then the parse a naive view does with json.loads."""
        r = self.receiver
        media = request.headers.get("content-type", "").split(";")[0].strip()
        if r.content_types is not None and media not in r.content_types:
            return _refusal(415, "unsupported_media_type")
        body = request.content
        if r.max_body is not None and len(body) > r.max_body:
            return _refusal(413, "body_too_large")
        try:
            json.loads(body)
        except r.handles:
            return _refusal(400, "malformed_body")
        except Exception:  # what the view does not catch: Django's 500
            return self._crashed()
        if r.echo:
            return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
        return httpx.Response(200, json={"ok": True})

    # TLS

    def handshake(
        self, context: ssl.SSLContext, *, without_cert: bool
    ) -> tuple[bool, str, bytes | None]:
        r = self.receiver
        der = self.world.server_certs[r.server_cert]
        legacy = {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}
        version = legacy.get(context.maximum_version, "TLSv1.3")
        if version != "TLSv1.3" and not r.legacy_tls:
            return False, "TLSV1_ALERT_PROTOCOL_VERSION", None
        if context.verify_mode == ssl.CERT_REQUIRED and not r.server_trusted:
            return False, "CERTIFICATE_VERIFY_FAILED", None
        if without_cert and r.handshake_requires_cert:  # what OpenSSL says, in every version
            alert = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
            return False, alert if version == "TLSv1.3" else "SSLV3_ALERT_HANDSHAKE_FAILURE", None
        return True, version, der


def _refusal(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code}})


@contextmanager
def serving(
    monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint
) -> Iterator[dict[str, httpx.AsyncClient]]:
    """Route the scanner's requests and handshakes to ``endpoint`` for the ``with`` block.

    The scanner opens one client per certificate profile; each gets its own MockTransport that
    tells the endpoint which certificate chain was presented. A handshake's context carries a
    client certificate when ``load_cert_chain`` was called on it (recorded here: a context does
    not say). Yields the clients (to close).
    """
    clients: dict[str, httpx.AsyncClient] = {}
    holding: list[ssl.SSLContext] = []  # contexts given a client certificate
    load_cert_chain = ssl.SSLContext.load_cert_chain

    def recording(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        load_cert_chain(context, *args, **kwargs)
        holding.append(context)

    def client(ctx: ScanContext, profile: Profile | ClientFiles) -> httpx.AsyncClient:
        files = profile if isinstance(profile, ClientFiles) else ctx.profiles.files(profile)
        key = str(files.cert) if files else "none"
        if key not in clients:
            chain = load_chain(files.cert.read_bytes()) if files else ()
            transport = httpx.MockTransport(partial(endpoint.handle, chain))
            clients[key] = httpx.AsyncClient(transport=transport)
        return clients[key]

    async def handshake(
        ctx: ScanContext, context: ssl.SSLContext, *, send_request: bool = True
    ) -> tuple[bool, str, bytes | None]:
        del ctx, send_request
        without_cert = not any(context is held for held in holding)
        return endpoint.handshake(context, without_cert=without_cert)

    with monkeypatch.context() as patch:
        patch.setattr(ScanContext, "_client", client)
        patch.setattr(ScanContext, "handshake", handshake)
        patch.setattr(ssl.SSLContext, "load_cert_chain", recording)
        yield clients
