"""The guard: the fixed order of steps a webhook request goes through, one call per step.

    source -> verify -> policy -> limits -> input -> signature -> (decision logged)

Each step returns a value for the next or a ``Rejection``; the first rejection ends the way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem

from hookshield.core.audit import log_decision, log_spoofing
from hookshield.core.certs import PresentedChain
from hookshield.core.errors import Code, Rejection, SourceError
from hookshield.core.identity import ClientIdentity
from hookshield.core.payload import InputRules, read_body
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust
from hookshield.core.ratelimit import RateLimiter
from hookshield.core.replay import ReplayStore, StoreUnavailable, replay_key
from hookshield.core.signatures import SignatureVerifier
from hookshield.core.sources import Inbound, Source
from hookshield.core.verify import Verifier

__all__ = [
    "Accepted",
    "Decision",
    "DecisionObserver",
    "Endpoint",
    "Guard",
    "reject",
    "unknown_endpoint",
]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything one webhook endpoint enforces, compiled once."""

    name: str
    allow: Allowlist
    rates: tuple[RateLimitItem, ...] = ()
    rules: InputRules = field(default_factory=InputRules)
    signatures: SignatureVerifier | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request that passed every step; what the view receives as ``request.webhook``.

    Attributes:
        matched: the allowlist entry that admitted the caller (also its rate-limit identity).
        json: the parsed payload (None for non-JSON content types).
        body: the raw body as received (what a signature covered).
        delivery_id: the verified ``webhook-id`` on signed endpoints.
    """

    endpoint: str
    identity: ClientIdentity
    matched: str
    long_lived: bool
    json: Any = None
    body: bytes = b""
    delivery_id: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What an observer (inventory, metrics) learns of each decision, after it is made.

    Attributes:
        chain: the certificate presented, when one could be taken (also when it did not verify).
        identity: who it names, once verified.
        elapsed: seconds of the guard's own work on this request.
    """

    endpoint: str
    result: Accepted | Rejection
    inbound: Inbound
    chain: PresentedChain | None
    identity: ClientIdentity | None
    elapsed: float


DecisionObserver = Callable[[Decision], None]


@dataclass(slots=True)
class _Trace:
    chain: PresentedChain | None = None
    identity: ClientIdentity | None = None


class Guard:
    """Framework-free: adapters build an ``Inbound`` and turn the result into a response."""

    def __init__(
        self,
        *,
        source: Source,
        trust: ProxyTrust,
        verifier: Verifier,
        endpoints: Mapping[str, Endpoint],
        limiter: RateLimiter | None = None,
        replay: ReplayStore | None = None,
        observers: Sequence[DecisionObserver] = (),
    ) -> None:
        self.source = source
        self.trust = trust
        self.verifier = verifier
        self.endpoints = dict(endpoints)
        self.limiter = limiter or RateLimiter()
        self.replay = replay
        self.observers = tuple(observers)

    @property
    def does_io(self) -> bool:
        """True when a step talks to the network (async adapters then leave the event loop)."""
        return self.limiter.shared or (self.replay is not None and self.replay.networked)

    def check(self, inbound: Inbound, endpoint: str) -> Accepted | Rejection:
        started = time.perf_counter()
        trace = _Trace()
        result = self._check(inbound, endpoint, trace)
        if isinstance(result, Accepted):
            reason = f"matched {result.matched}"
            if result.long_lived:
                reason += f"; long-lived certificate ({result.identity.lifetime.days} days)"
            log_decision(
                endpoint=endpoint,
                outcome="accepted",
                code=None,
                reason=reason,
                identity=result.identity,
                peer=inbound.peer,
                level=logging.WARNING if result.long_lived else logging.INFO,
            )
        if self.observers:
            self._observe(
                Decision(
                    endpoint,
                    result,
                    inbound,
                    trace.chain,
                    trace.identity,
                    time.perf_counter() - started,
                )
            )
        return result

    def _observe(self, decision: Decision) -> None:
        for observer in self.observers:
            try:
                observer(decision)
            except Exception:  # an observer's failure must never fail a webhook
                logging.getLogger("hookshield.guard").exception("decision observer failed")

    def release(self, accepted: Accepted) -> None:
        """Give a delivery id back after the view failed, so the sender's retry is not a replay."""
        if accepted.delivery_id is None or self.replay is None:
            return
        try:
            self.replay.release(replay_key(accepted.endpoint, accepted.delivery_id))
        except StoreUnavailable:
            logging.getLogger("hookshield.replay").warning(
                "could not release webhook-id on endpoint %s; the sender's retry may be refused",
                accepted.endpoint,
            )

    def _check(self, inbound: Inbound, name: str, trace: _Trace) -> Accepted | Rejection:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return reject(inbound, name, unknown_endpoint(name), level=logging.ERROR)
        chain = self.take_certificate(inbound)
        if isinstance(chain, Rejection):
            return reject(inbound, name, chain)
        trace.chain = chain
        verified = self.verifier.verify(chain)
        if isinstance(verified, Rejection):
            return reject(inbound, name, verified)
        identity = trace.identity = verified.identity
        matched = endpoint.allow.match(identity)
        if matched is None:
            return reject(
                inbound,
                name,
                Rejection(Code.IDENTITY_NOT_ALLOWED, "identity matches no ALLOW entry"),
                identity,
            )
        refused = self.limiter.hit(name, matched, endpoint.rates)
        if refused is not None:
            return reject(inbound, name, refused, identity)
        payload = self.take_payload(inbound, endpoint.rules)
        if isinstance(payload, Rejection):
            return reject(inbound, name, payload, identity)
        document, body = payload
        delivery_id = None
        if endpoint.signatures is not None:
            signed = self.check_signature(inbound.meta, endpoint, body)
            if isinstance(signed, Rejection):
                return reject(inbound, name, signed, identity)
            delivery_id = signed
        return Accepted(name, identity, matched, verified.long_lived, document, body, delivery_id)

    def take_certificate(self, inbound: Inbound) -> PresentedChain | Rejection:
        """The source step: believe forwarded headers only from a trusted proxy."""
        if self.source.forwarded:
            distrust = self.trust.distrust(inbound)
            if distrust is not None:
                if any(key in inbound.meta for key in self.source.meta_keys()):
                    log_spoofing(source=self.source.name, peer=inbound.peer, why=distrust)
                return Rejection(
                    Code.CLIENT_CERT_MISSING, f"certificate headers ignored: {distrust}"
                )
        try:
            chain = self.source.take(inbound)
        except SourceError as exc:
            return exc.rejection()
        if chain is None:
            return Rejection(Code.CLIENT_CERT_MISSING, "no client certificate presented")
        return chain

    @staticmethod
    def take_payload(inbound: Inbound, rules: InputRules) -> tuple[Any, bytes] | Rejection:
        """The input step: method, type and size before reading; then read, then parse once."""
        meta = inbound.meta
        content_type = str(meta.get("CONTENT_TYPE") or "")
        refused = rules.check_head(inbound.method, content_type, meta.get("CONTENT_LENGTH"))
        if refused is not None:
            return refused
        body = read_body(inbound.read, rules.max_body)
        if isinstance(body, Rejection):
            return body
        document, refused = rules.parse(content_type, body)
        return refused if refused is not None else (document, body)

    def check_signature(
        self, meta: Mapping[str, Any], endpoint: Endpoint, body: bytes
    ) -> str | Rejection:
        """The signature step: a matching signature in time, then a first-time delivery id."""
        assert endpoint.signatures is not None
        delivery_id = endpoint.signatures.verify(meta, body)
        if isinstance(delivery_id, Rejection):
            return delivery_id
        if self.replay is None:
            return Rejection(Code.REPLAY_STORE_UNAVAILABLE, "no replay store configured")
        try:
            first = self.replay.claim(
                replay_key(endpoint.name, delivery_id), 2 * endpoint.signatures.tolerance
            )
        except StoreUnavailable as exc:
            return Rejection(Code.REPLAY_STORE_UNAVAILABLE, str(exc))
        if not first:
            return Rejection(Code.DELIVERY_REPLAYED, "webhook-id seen within the replay window")
        return delivery_id


def unknown_endpoint(name: str) -> Rejection:
    return Rejection.guard_unavailable(f"endpoint {name!r} is not in HOOKSHIELD['ENDPOINTS']")


def reject(
    inbound: Inbound,
    endpoint: str,
    rejection: Rejection,
    identity: ClientIdentity | None = None,
    level: int = logging.WARNING,
) -> Rejection:
    """Log the refusal's decision line and hand the rejection back."""
    log_decision(
        endpoint=endpoint,
        outcome="rejected",
        code=rejection.code,
        reason=rejection.reason,
        identity=identity,
        peer=inbound.peer,
        level=level,
    )
    return rejection
