"""Checks are small registered classes; everything else reads their class data.

    @register
    class NoClientCert(Check):
        id = "auth.no-client-cert"
        category = Category.AUTHENTICATION
        severity = Severity.CRITICAL
        title = "Deliveries without a client certificate are accepted"
        remediation = "..."
        needs = frozenset({Need.ACCEPTED_BASELINE})

        async def run(self, ctx: ScanContext) -> list[Finding]: ...

``run`` only returns findings; the engine owns the outcome (skipped when ``needs`` are unmet,
inconclusive when the answers prove nothing, error when ``run`` raises).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, NoReturn, TypeVar

from hookshield.scanner.model import Category, Evidence, Finding, Severity

if TYPE_CHECKING:
    from hookshield.scanner.context import Reply, ScanContext

__all__ = [
    "CHECKS",
    "MASKED",
    "Check",
    "CheckSkipped",
    "Inconclusive",
    "Need",
    "NotApplicable",
    "masked",
    "register",
]


class CheckSkipped(Exception):
    """Raised by a check that finds, once running, that it cannot probe (the message says why)."""


class NotApplicable(CheckSkipped):
    """Raised by a check when the target cannot express what it inspects (outside coverage)."""


class Inconclusive(Exception):
    """Raised by a check whose probes were answered but prove neither a flaw nor its absence."""


class Need(StrEnum):
    """What a check needs; an unmet need skips it with the reason below."""

    ACCEPTED_BASELINE = "a legitimate delivery that the endpoint accepts (the baseline)"
    CLIENT_CERT = "the legitimate client certificate (--cert/--key)"
    FOREIGN_CERT = "a second valid identity (--foreign-cert/--foreign-key, or --mint-ca/--mint-key)"
    MINT_CA = "the client certificates' issuing CA (--mint-ca/--mint-key)"
    SIGNING_SECRET = "the endpoint's signing secret (--signing-secret)"  # noqa: S105
    HTTPS = "an https:// target"


class Check(ABC):
    id: ClassVar[str]
    category: ClassVar[Category]
    severity: ClassVar[Severity]
    title: ClassVar[str]
    remediation: ClassVar[str]
    needs: ClassVar[frozenset[Need]] = frozenset()
    # Runs after every other check (the rate-limit burst would throttle them; data-exposure
    # checks read every answer the others got).
    last: ClassVar[bool] = False
    # Sends nothing, reads every answer of the scan: runs after the other last checks, so the
    # rate-limit burst's answers are read too.
    reads_answers: ClassVar[bool] = False

    @abstractmethod
    async def run(self, ctx: ScanContext) -> list[Finding]:
        """Probe the target through ``ctx``; return what was found (empty: nothing)."""

    def finding(self, evidence: Evidence) -> Finding:
        return Finding(
            self.id, self.category, self.severity, self.title, evidence, self.remediation
        )

    def if_accepted(self, *replies: Reply) -> list[Finding]:
        """A finding for each reply the target accepted (the usual verdict of a probe)."""
        return [self.finding(reply.evidence()) for reply in replies if reply.accepted]

    def if_accepted_unlike(
        self, ctx: ScanContext, control: Reply, *probes: Reply, masked_by: str
    ) -> list[Finding]:
        """A finding for each probe accepted while ``control`` (the same request without the
        property under test) was refused; the control goes into each finding's evidence.

        When the control is accepted too, the property is not what lets the probes in: the
        broader flaw hides it. Reported by ``masked_by``, the check is not applicable; with
        ``masked_by`` left out of the scan, nothing reports it and the check is inconclusive
        (a gate must not pass on it).
        """
        if control.accepted:
            masked(ctx, f"the control ({control.request}) is accepted as well", masked_by)
        return self.accepted_against(control, *probes)

    def accepted_against(self, control: Reply, *probes: Reply) -> list[Finding]:
        """A finding for each accepted probe, with ``control`` (refused) in its evidence."""
        return [self.finding(probe.evidence(control=control)) for probe in probes if probe.accepted]


MASKED = "masked: "  # how the reason of a check masked by a broader flaw starts


def masked(ctx: ScanContext, why: str, masked_by: str) -> NoReturn:
    """Raise what a check whose probes a broader flaw hides ends with (see if_accepted_unlike)."""
    if ctx.config.runs(masked_by):
        raise NotApplicable(
            f"{MASKED}{why}, which {masked_by} reports; the probes cannot show more"
        )
    raise Inconclusive(
        f"{why}, which {masked_by} would report, but it is not part of this scan: the probes "
        "cannot show more"
    )


CHECKS: dict[str, type[Check]] = {}
C = TypeVar("C", bound=type[Check])


def register(cls: C) -> C:
    if cls.id in CHECKS:
        raise ValueError(f"duplicate scanner check id {cls.id!r}")
    CHECKS[cls.id] = cls
    return cls
