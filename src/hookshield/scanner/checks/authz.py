"""Authorization: does a valid certificate of the wrong identity get in?"""

from __future__ import annotations

from hookshield.scanner.context import ScanContext
from hookshield.scanner.model import Category, Finding, Severity
from hookshield.scanner.profiles import Profile
from hookshield.scanner.registry import Check, Need, register


@register
class ForeignIdentity(Check):
    id = "authz.foreign-identity"
    category = Category.AUTHORIZATION
    severity = Severity.HIGH
    title = "A valid certificate for a different identity is accepted"
    remediation = (
        "Bind identities to endpoints: list only this webhook's callers in "
        "HOOKSHIELD['ENDPOINTS']['<endpoint>']['ALLOW'] (SPIFFE IDs, dns:, uri: or sha256: pins); "
        "@webhook answers 403 identity_not_allowed to every other valid certificate."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.FOREIGN_CERT, Need.HTTPS})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        control = await ctx.control(Profile.NO_CERT)
        reply = await ctx.control(Profile.FOREIGN)
        return self.if_accepted_unlike(ctx, control, reply, masked_by="auth.no-client-cert")


@register
class IdentityConfusion(Check):
    id = "authz.identity-confusion"
    category = Category.AUTHORIZATION
    severity = Severity.HIGH
    title = "A certificate whose identity only resembles the legitimate one is accepted"
    remediation = (
        "Match identities exactly, never by substring, prefix, case-folding or regex over DN "
        "strings: entries of HOOKSHIELD['ENDPOINTS']['<endpoint>']['ALLOW'] compare whole SPIFFE "
        "IDs and SANs, certificates with several URI SANs are refused, and a CN matches only "
        "with ALLOW_CN and a single CN."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.MINT_CA, Need.HTTPS})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        # The control: a valid identity that resembles nothing. Accepted, it hides every
        # resemblance (authz.foreign-identity reports that).
        control = await ctx.control(Profile.FOREIGN)
        self.if_accepted_unlike(ctx, control, masked_by=ForeignIdentity.id)
        findings = []
        for alike, files in ctx.profiles.look_alikes():
            reply = await ctx.deliver(files, label=f"look-alike: {alike.kind}")
            if reply.accepted:
                findings.append(self.finding(reply.evidence(alike.description, control=control)))
        return findings
