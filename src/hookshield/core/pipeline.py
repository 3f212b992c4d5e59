"""The guard: the request's fixed way through named steps, and the one record of its decision.

    take_certificate -> verify (Verifier) -> authorize -> throttle (RateLimiter.start_hit)
                     -> admit_input -> signature -> first_delivery -> record (log, observers)

On a signed, rated endpoint whose replay store is the limiter's Redis, the throttle step makes
the replay claim too (``early_claim``: one round trip), and ``first_delivery`` uses its
outcome. While Redis counts, a short declared body is read, parsed and its signature checked
(``READ_AHEAD``; not on an endpoint with a schema, nor when nothing is in flight); the rate's
answer still decides first.

Each step returns a value for the next or a ``Rejection``; the first rejection ends the way.
Every decision, accepted or not, goes through ``record`` exactly once: the decision log line
first, then each observer (inventory, metrics); with no observer, through its first part
(``log_result``) alone, so no ``Decision`` is built for nobody. Adapters (the Django decorator,
DRF) call ``Guard.check`` and nothing else; none of them takes a step or logs a decision itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem

from hookshield.core.audit import decision_logger, log_spoofing, will_emit, write_decision
from hookshield.core.certs import PresentedChain
from hookshield.core.errors import Code, Rejection, SourceError
from hookshield.core.identity import ClientIdentity
from hookshield.core.payload import InputRules, read_body
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust
from hookshield.core.ratelimit import PendingHit, RateLimiter
from hookshield.core.replay import ReplayStore, StoreUnavailable, claim_token, replay_key
from hookshield.core.signatures import SignatureVerifier
from hookshield.core.sources import Inbound, Source
from hookshield.core.verify import Verifier

__all__ = [
    "Decision",
    "DecisionObserver",
    "Endpoint",
    "Guard",
    "Webhook",
    "record",
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


@dataclass(frozen=True)
class Webhook:
    """An accepted delivery: it passed every step. The view receives it as ``request.webhook``.

    Attributes:
        endpoint: the ``ENDPOINTS`` name it was accepted for.
        identity: the verified caller.
        matched: the allowlist entry that admitted the caller (also its rate-limit identity).
        long_lived: whether the certificate outlives ``MAX_CERT_LIFETIME_DAYS`` (accepted under
            ``LONG_LIVED = "warn"``).
        json: the parsed payload (None for non-JSON content types).
        body: the raw body as received (what a signature covered).
        delivery_id: the verified ``webhook-id`` on signed endpoints, else None.
        claim_token: the token its replay claim stores, so that the release after a failed
            view deletes that claim only (signed endpoints), else None.
    """

    endpoint: str
    identity: ClientIdentity
    matched: str
    long_lived: bool
    json: Any = None
    body: bytes = b""
    delivery_id: str | None = None
    claim_token: str | None = field(default=None, repr=False)


def accepted_webhook(
    endpoint: str,
    identity: ClientIdentity,
    matched: str,
    long_lived: bool,
    document: Any,
    body: bytes,
    delivery_id: str | None,
    claim_token: str | None,
) -> Webhook:
    """``Webhook(...)`` at a third of the cost, on every accepted delivery.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; this
    stores them in the new instance's ``__dict__`` directly. The instance is the same: frozen,
    equal to ``Webhook(...)``, every field set (a test holds the two to the same fields).
    """
    accepted = object.__new__(Webhook)
    state = accepted.__dict__
    state["endpoint"] = endpoint
    state["identity"] = identity
    state["matched"] = matched
    state["long_lived"] = long_lived
    state["json"] = document
    state["body"] = body
    state["delivery_id"] = delivery_id
    state["claim_token"] = claim_token
    return accepted


@dataclass(frozen=True, slots=True)
class Decision:
    """What an observer (inventory, metrics) learns of each decision, after it is made.

    Attributes:
        chain: the certificate presented, when one could be taken (also when it did not verify).
        identity: who it names, once verified.
        elapsed: seconds of the guard's own work on this request.
    """

    endpoint: str
    result: Webhook | Rejection
    inbound: Inbound
    chain: PresentedChain | None
    identity: ClientIdentity | None
    elapsed: float


DecisionObserver = Callable[[Decision], None]
# What the input and signature steps check: the parsed body, the body, and on a signed
# endpoint the verified delivery id; once it is known to be new, also its claim's token.
_Checked = tuple[Any, bytes, str | None]
_Accepted = tuple[Any, bytes, str | None, str | None]
# A body declared this short is read and checked while Redis counts the request.
READ_AHEAD = 16 * 1024


def reads_ahead(meta: Mapping[str, Any]) -> bool:
    """True when the request declares a body of at most ``READ_AHEAD`` bytes."""
    declared = meta.get("CONTENT_LENGTH")
    if not isinstance(declared, str) or not (declared.isascii() and declared.isdigit()):
        return False
    return len(declared) <= 6 and int(declared) <= READ_AHEAD


logger = logging.getLogger("hookshield.guard")


def record(
    decision: Decision,
    observers: Sequence[DecisionObserver] = (),
    accepted_level: int = logging.INFO,
) -> None:
    """The one place a decision goes: its log line, then every observer, each exactly once.

    ``accepted_level``: the level of an accepted delivery's line (``ACCEPTED_LOG_LEVEL``);
    refusals and long-lived certificates keep theirs.
    """
    log_result(
        decision.endpoint, decision.result, decision.inbound.peer, decision.identity, accepted_level
    )
    for observer in observers:
        try:
            observer(decision)
        except Exception:  # an observer's failure must never fail a webhook
            logger.exception("decision observer failed")


def log_result(
    endpoint: str,
    result: Webhook | Rejection,
    peer: str,
    identity: ClientIdentity | None,
    accepted_level: int = logging.INFO,
) -> None:
    """A decision's log line: ``record``'s first part, all of it when nobody observes."""
    if isinstance(result, Webhook):
        level = logging.WARNING if result.long_lived else accepted_level
        if not will_emit(decision_logger, level):
            return  # before the reason is formatted: the usual case at DEBUG
        reason = f"matched {result.matched}"
        if result.long_lived:
            reason += f"; long-lived certificate ({result.identity.lifetime.days} days)"
        write_decision(endpoint, "accepted", None, reason, result.identity, peer, level)
    else:
        # The guard's own failure (a configuration problem) is an operator's error.
        level = logging.ERROR if result.code is Code.GUARD_UNAVAILABLE else logging.WARNING
        if will_emit(decision_logger, level):
            write_decision(endpoint, "rejected", result.code, result.reason, identity, peer, level)


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
        accepted_level: int = logging.INFO,
    ) -> None:
        self.source = source
        self.trust = trust
        self.verifier = verifier
        self.endpoints = dict(endpoints)
        self.limiter = limiter or RateLimiter()
        self.replay = replay
        self.observers = tuple(observers)
        self.accepted_level = accepted_level
        # The replay store on the limiter's own Redis client: claims ride with the rate count.
        shared = self.limiter.redis
        self._joint = shared is not None and getattr(replay, "storage", None) is shared

    @property
    def does_io(self) -> bool:
        """True when a step talks to the network (async adapters then leave the event loop)."""
        return self.limiter.shared or (self.replay is not None and self.replay.networked)

    def check(self, inbound: Inbound, endpoint: str) -> Webhook | Rejection:
        """Run every step for ``endpoint`` and record the decision."""
        if not self.observers:
            # Nobody to hand a Decision to: its line alone (a frozen dataclass costs about 1 µs).
            result, _, identity = self._steps(inbound, endpoint)
            log_result(endpoint, result, inbound.peer, identity, self.accepted_level)
            return result
        started = time.perf_counter()
        result, chain, identity = self._steps(inbound, endpoint)
        elapsed = time.perf_counter() - started
        record(
            Decision(endpoint, result, inbound, chain, identity, elapsed),
            self.observers,
            self.accepted_level,
        )
        return result

    def release(self, accepted: Webhook) -> None:
        """Give a delivery id back after the view failed, so the sender's retry is not a replay."""
        if accepted.delivery_id is None:
            return
        endpoint = self.endpoints.get(accepted.endpoint)
        signatures = endpoint.signatures if endpoint is not None else None
        key = replay_key(accepted.endpoint, accepted.delivery_id)
        ttl = 2 * signatures.tolerance if signatures is not None else 0
        self._give_back((key, ttl, accepted.claim_token), accepted.endpoint)

    def _give_back(self, claim: tuple[str, int, str | None], endpoint: str) -> None:
        """Release ``(key, ttl, token)``: that claim only, never one made since."""
        if self.replay is None:
            return
        key, ttl, token = claim
        log = logging.getLogger("hookshield.replay")
        try:
            self.replay.release(key, token, ttl)
        except StoreUnavailable:
            log.warning(
                "could not release webhook-id on endpoint %s now; the sender's retry may be "
                "refused until it is given back or expires",
                endpoint,
            )
        except Exception:
            # A bug: loud, but the answer stays the request's own (a rejection, or the view's
            # failure), never a 500 of the release's making.
            log.exception("unexpected error releasing webhook-id on endpoint %s", endpoint)

    def _steps(
        self, inbound: Inbound, name: str
    ) -> tuple[Webhook | Rejection, PresentedChain | None, ClientIdentity | None]:
        """The decision, with the certificate and identity as far as the steps got (for the
        record, also of a refusal)."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return unknown_endpoint(name), None, None
        chain = self.take_certificate(inbound)
        if isinstance(chain, Rejection):
            return chain, None, None
        verified = self.verifier.verify(chain)  # re-verified in process, cached by fingerprint
        if isinstance(verified, Rejection):
            return verified, chain, None
        identity = verified.identity
        matched = self.authorize(endpoint, identity)
        if isinstance(matched, Rejection):
            return matched, chain, identity
        claim = self.early_claim(endpoint, inbound.meta) if self._joint else None
        accepted = self._admitted(inbound, endpoint, matched, claim)
        if isinstance(accepted, Rejection):
            return accepted, chain, identity
        document, body, delivery_id, token = accepted  # a plain call: cheaper than *accepted
        webhook = accepted_webhook(
            name, identity, matched, verified.long_lived, document, body, delivery_id, token
        )
        return webhook, chain, identity

    def _admitted(
        self,
        inbound: Inbound,
        endpoint: Endpoint,
        matched: str,
        claim: tuple[str, int, str] | None,
    ) -> _Accepted | Rejection:
        """The rate (with ``claim``, the early replay claim, in the same trip), then the input
        and the signature, then a first-time delivery id.

        While Redis counts, the input step may run (``_read_ahead``): the round trip's wait
        does that work. The rate's refusal still answers first. A claim made for a delivery
        that is not accepted is given back.
        """
        accepted: _Accepted | Rejection | None = None
        pending = self.limiter.start_hit(endpoint.name, matched, endpoint.rates, claim)
        try:
            checked = self._read_ahead(inbound, endpoint, pending) if pending.in_flight else None
            refused, claimed = pending.result()
            if refused is not None:
                return refused
            if checked is None:
                checked = self._checked_input(inbound, endpoint)
            accepted = self._accepted(endpoint, checked, claim, claimed)
            return accepted
        finally:
            if not isinstance(accepted, tuple):
                claimed = None
                with contextlib.suppress(Exception):  # what raised first is what propagates
                    claimed = pending.result()[1]  # read, if something raised while in flight
                if claim is not None and claimed:
                    self._give_back(claim, endpoint.name)  # held for a delivery not accepted

    def _read_ahead(
        self, inbound: Inbound, endpoint: Endpoint, pending: PendingHit
    ) -> _Checked | Rejection | None:
        """The input step, run while Redis counts; None when it waits for the rate's answer.

        Only for a body declared at most ``READ_AHEAD`` bytes and an endpoint without
        ``SCHEMA`` (whose cost a body's size does not bound); the caller asks only while the
        answer is on its way. Should the step raise, a refusal of the rate is still the answer.
        """
        if endpoint.rules.schema is not None or not reads_ahead(inbound.meta):
            return None
        try:
            return self._checked_input(inbound, endpoint)
        except Exception:
            if pending.result()[0] is None:
                raise
            return None  # refused: the caller reads the refusal

    def _checked_input(self, inbound: Inbound, endpoint: Endpoint) -> _Checked | Rejection:
        """The body read and parsed, and its signature checked on a signed endpoint."""
        payload = self.admit_input(inbound, endpoint.rules)
        if isinstance(payload, Rejection):
            return payload
        document, body = payload
        signatures = endpoint.signatures
        if signatures is None:
            return document, body, None
        delivery_id = signatures.verify(inbound.meta, body)
        if isinstance(delivery_id, Rejection):
            return delivery_id
        return document, body, delivery_id

    def _accepted(
        self,
        endpoint: Endpoint,
        checked: _Checked | Rejection,
        claim: tuple[str, int, str] | None,
        claimed: bool | None,
    ) -> _Accepted | Rejection:
        """``checked``, once its delivery id is known to come for the first time.

        ``claim``: the one made with the rate count (``claimed``: its outcome, if made).
        """
        if isinstance(checked, Rejection):
            return checked
        document, body, delivery_id = checked
        signatures = endpoint.signatures
        if signatures is None:
            return document, body, None, None
        if delivery_id is None:  # a signed endpoint's input step names it: never unclaimed
            return Rejection(Code.SIGNATURE_INVALID, "no verified webhook-id")
        token = self.first_delivery(
            endpoint.name,
            signatures,
            delivery_id,
            claimed=claimed,
            token=claim[2] if claim is not None else None,
        )
        if isinstance(token, Rejection):
            return token
        return document, body, delivery_id, token

    def take_certificate(self, inbound: Inbound) -> PresentedChain | Rejection:
        """Believe forwarded headers only from a trusted proxy; then let the source parse."""
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
    def authorize(endpoint: Endpoint, identity: ClientIdentity) -> str | Rejection:
        """The ALLOW entry that admits ``identity`` (exact matching only)."""
        matched = endpoint.allow.match(identity)
        if matched is None:
            return Rejection(Code.IDENTITY_NOT_ALLOWED, "identity matches no ALLOW entry")
        return matched

    def early_claim(
        self, endpoint: Endpoint, meta: Mapping[str, Any]
    ) -> tuple[str, int, str] | None:
        """The replay claim (key, TTL, token) to make with the rate count, in one Redis round
        trip.

        Only on a signed and rated endpoint whose replay store is the limiter's own Redis
        client, and only for a well-formed ``webhook-id``. The claim rides with the count, so
        it is made before the delivery is known good (the signature is checked while the
        count is in flight or after its answer, never before it is sent): a delivery that then
        fails gives the id back; one that passes is accepted without a second trip.
        """
        signatures = endpoint.signatures
        if signatures is None or not endpoint.rates or not self._joint:
            return None
        delivery_id = signatures.delivery_id(meta)
        if delivery_id is None:
            return None
        return replay_key(endpoint.name, delivery_id), 2 * signatures.tolerance, claim_token()

    @staticmethod
    def admit_input(inbound: Inbound, rules: InputRules) -> tuple[Any, bytes] | Rejection:
        """Method, type and size before reading; then read, then parse once."""
        meta = inbound.meta
        content_type = str(meta.get("CONTENT_TYPE") or "")
        head = rules.admit_head(inbound.method, content_type, meta.get("CONTENT_LENGTH"))
        if isinstance(head, Rejection):
            return head
        json_body, declared = head
        body = read_body(inbound.read, rules.max_body, declared)
        if isinstance(body, Rejection):
            return body
        document, refused = rules.parse_body(json_body, body)
        return refused if refused is not None else (document, body)

    def first_delivery(
        self,
        name: str,
        signatures: SignatureVerifier,
        delivery_id: str,
        *,
        claimed: bool | None = None,
        token: str | None = None,
    ) -> str | Rejection:
        """The token of the replay claim that makes ``delivery_id`` (verified) a first-time
        delivery on endpoint ``name``, or the refusal.

        ``claimed``: the outcome of the claim already made with the rate count, storing
        ``token``, if it was; else the claim is made now.
        """
        if self.replay is None:
            return Rejection(Code.REPLAY_STORE_UNAVAILABLE, "no replay store configured")
        if claimed is None or token is None:
            token = claim_token()
            key = replay_key(name, delivery_id)
            try:
                claimed = self.replay.claim(key, 2 * signatures.tolerance, token)
            except StoreUnavailable as exc:
                return Rejection(Code.REPLAY_STORE_UNAVAILABLE, str(exc))
        if not claimed:
            return Rejection(Code.DELIVERY_REPLAYED, "webhook-id seen within the replay window")
        return token


def unknown_endpoint(name: str) -> Rejection:
    return Rejection.guard_unavailable(f"endpoint {name!r} is not in HOOKSHIELD['ENDPOINTS']")
