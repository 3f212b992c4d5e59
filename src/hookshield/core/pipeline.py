"""The guard: the fixed order of steps a webhook request goes through, one call per step.

    source -> verify -> policy -> (decision logged)

Each step returns a value for the next or a ``Rejection``; the first rejection ends the way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from hookshield.core.audit import log_decision, log_spoofing
from hookshield.core.certs import PresentedChain
from hookshield.core.errors import Code, Rejection, SourceError
from hookshield.core.identity import ClientIdentity
from hookshield.core.policy import Allowlist
from hookshield.core.proxies import ProxyTrust
from hookshield.core.sources import Inbound, Source
from hookshield.core.verify import Verifier

__all__ = ["Accepted", "Guard", "reject"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request that passed every step: who called, and which allowlist entry admitted it."""

    endpoint: str
    identity: ClientIdentity
    matched: str
    long_lived: bool


class Guard:
    """Framework-free: adapters build an ``Inbound`` and turn the result into a response."""

    def __init__(
        self,
        *,
        source: Source,
        trust: ProxyTrust,
        verifier: Verifier,
        endpoints: Mapping[str, Allowlist],
    ) -> None:
        self.source = source
        self.trust = trust
        self.verifier = verifier
        self.endpoints = dict(endpoints)

    def check(self, inbound: Inbound, endpoint: str) -> Accepted | Rejection:
        result = self._check(inbound, endpoint)
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
        return result

    def _check(self, inbound: Inbound, endpoint: str) -> Accepted | Rejection:
        allowlist = self.endpoints.get(endpoint)
        if allowlist is None:
            return reject(
                inbound,
                endpoint,
                Rejection(
                    Code.GUARD_UNAVAILABLE,
                    f"endpoint {endpoint!r} is not in HOOKSHIELD['ENDPOINTS']",
                ),
                None,
                logging.ERROR,
            )
        chain = self.take_certificate(inbound)
        if isinstance(chain, Rejection):
            return reject(inbound, endpoint, chain, None)
        verified = self.verifier.verify(chain)
        if isinstance(verified, Rejection):
            return reject(inbound, endpoint, verified, None)
        matched = allowlist.match(verified.identity)
        if matched is None:
            return reject(
                inbound,
                endpoint,
                Rejection(Code.IDENTITY_NOT_ALLOWED, "identity matches no ALLOW entry"),
                verified.identity,
            )
        return Accepted(endpoint, verified.identity, matched, verified.long_lived)

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
