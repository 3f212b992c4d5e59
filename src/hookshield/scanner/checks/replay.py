"""Replay: unsigned, repeated and stale deliveries must be refused, whatever the signing scheme.

Signed per ``--signature-scheme``; without a secret, a receiver's own authentication given with
``--header`` or inside ``--payload`` (a captured delivery: Mailgun signs in the body) is sent
unchanged on every request, so re-sending the baseline tests replay too.
"""

from __future__ import annotations

import time

from hookshield.scanner.context import ScanContext
from hookshield.scanner.model import Category, Finding, Severity
from hookshield.scanner.registry import (
    Check,
    CheckSkipped,
    Inconclusive,
    Need,
    NotApplicable,
    register,
)

_NEEDS = frozenset({Need.ACCEPTED_BASELINE, Need.SIGNING_SECRET})


@register
class UnsignedAccepted(Check):
    id = "replay.unsigned-accepted"
    category = Category.REPLAY
    severity = Severity.HIGH
    title = "An unsigned delivery from the legitimate identity is accepted"
    remediation = (
        "Require signatures: HOOKSHIELD['ENDPOINTS']['<endpoint>']['SIGNING_SECRETS'] = "
        "['whsec_...']; @webhook then answers 401 signature_missing to unsigned deliveries."
    )
    needs = _NEEDS

    async def run(self, ctx: ScanContext) -> list[Finding]:
        reply = await ctx.deliver(sign=False, label="unsigned")
        return self.if_accepted(reply)


@register
class DuplicateAccepted(Check):
    id = "replay.duplicate-accepted"
    category = Category.REPLAY
    severity = Severity.MEDIUM
    title = "The same signed delivery, sent again unchanged, is accepted twice"
    remediation = (
        "Keep seen delivery ids: with SIGNING_SECRETS set, @webhook claims each webhook-id in "
        "HOOKSHIELD['REPLAY_STORAGE'] (the database, a shared cache or redis://) and answers "
        "409 delivery_replayed to a repeat. Other schemes: dedupe on their delivery id "
        "(X-GitHub-Delivery) or on the signature itself for at least the timestamp tolerance."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        if ctx.signer is not None:
            headers = ctx.signed_headers(ctx.payload)
            first = await ctx.deliver(headers=headers, sign=False, label="signed delivery")
            if not first.accepted:
                why = first.error or f"answered {first.status}"
                raise Inconclusive(
                    f"the first signed delivery was refused ({why}): nothing to repeat"
                )
            again = await ctx.deliver(headers=headers, sign=False, label="the same delivery again")
            return self.if_accepted(again)
        if not ctx.config.headers and ctx.config.payload is None:
            raise CheckSkipped(
                f"needs {Need.SIGNING_SECRET.value}, or a delivery the receiver authenticates "
                "to re-send unchanged (--header, --payload: a captured signed delivery)"
            )
        # The given headers and payload are the same on every request: the baseline, accepted,
        # was the first delivery; the same one again is the replay.
        again = await ctx.deliver(label="the baseline delivery again, unchanged")
        return self.if_accepted(again)


@register
class StaleTimestamp(Check):
    id = "replay.stale-timestamp"
    category = Category.REPLAY
    severity = Severity.MEDIUM
    title = "A correctly signed delivery with a timestamp an hour old is accepted"
    remediation = (
        "Bound the signature's age: @webhook refuses timestamps further than "
        "HOOKSHIELD['ENDPOINTS']['<endpoint>']['TIMESTAMP_TOLERANCE'] (default 300 s) from now."
    )
    needs = _NEEDS

    async def run(self, ctx: ScanContext) -> list[Finding]:
        assert ctx.signer is not None  # Need.SIGNING_SECRET
        if not ctx.signer.timestamped:
            raise NotApplicable(
                f"the {ctx.signer.scheme} scheme signs no timestamp: only a dedupe "
                "(replay.duplicate-accepted) can refuse an old delivery"
            )
        headers = ctx.signed_headers(ctx.payload, timestamp=int(time.time()) - 3600)
        reply = await ctx.deliver(headers=headers, sign=False, label="signed an hour ago")
        return self.if_accepted(reply)
