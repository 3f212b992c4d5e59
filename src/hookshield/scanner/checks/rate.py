"""Rate limiting: a burst from the legitimate identity must meet a 429 (with Retry-After)."""

from __future__ import annotations

import asyncio
import time

from hookshield.scanner.context import NoAnswer, Reply, ScanContext
from hookshield.scanner.model import Category, Evidence, Finding, Severity
from hookshield.scanner.registry import (
    Check,
    CheckSkipped,
    Inconclusive,
    Need,
    NotApplicable,
    register,
)

_BURST = "rate.burst"


async def burst(ctx: ScanContext) -> list[Reply]:
    """The burst, sent once for both rate checks, never past the budget; stops at a refusal."""
    if _BURST not in ctx.memo:
        size = min(ctx.config.burst, ctx.remaining)
        ctx.notice(
            f"rate-limit burst: up to {size} deliveries as the legitimate identity; they count "
            "against its real quota on this endpoint until the window passes"
        )
        slots = iter(range(size))  # shared by the senders
        replies: list[Reply] = []
        throttled = False
        silent: NoAnswer | None = None

        async def sender() -> None:
            nonlocal throttled, silent
            for _ in slots:
                if throttled or silent:
                    return  # a limit answered, or nothing does: no need to push further
                try:
                    reply = await ctx.deliver(label="burst", throttle_is_evidence=True)
                except NoAnswer as exc:
                    silent = silent or exc
                    return
                replies.append(reply)
                throttled = throttled or reply.throttled

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(max(1, ctx.config.concurrency))))
        ctx.burst = (len(replies), time.perf_counter() - started)
        # Both rate checks read it; a burst nothing answered is not sent a second time.
        ctx.memo[_BURST] = silent or replies
    sent = ctx.memo[_BURST]
    if isinstance(sent, NoAnswer):
        raise sent
    return list(sent)


@register
class NoLimit(Check):
    id = "rate.no-limit"
    category = Category.RATE_LIMITING
    severity = Severity.HIGH
    title = "A burst from the legitimate identity is accepted in full"
    remediation = (
        "Limit each identity: HOOKSHIELD['ENDPOINTS']['<endpoint>']['RATE'] = '100/minute' (or "
        "what the sender needs), with RATE_LIMIT_STORAGE = 'redis://...' when several processes "
        "serve the webhook."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})
    last = True

    async def run(self, ctx: ScanContext) -> list[Finding]:
        replies = await burst(ctx)
        if any(r.throttled for r in replies):
            return []
        if len(replies) < ctx.config.burst:
            # Only the budget ends a burst early without a 429: too short to say anything.
            raise CheckSkipped(
                f"the request budget left room for {len(replies)} of the {ctx.config.burst} "
                "burst deliveries"
            )
        if ctx.config.rate:
            # Paced, the burst spreads over time: a limit above the pace never answers 429.
            raise Inconclusive(
                f"{len(replies)} deliveries paced at --rate {ctx.config.rate:g}/s met no limit: "
                "a limit above that pace cannot show (scan without --rate, or --skip "
                f"{self.id})"
            )
        accepted = sum(r.accepted for r in replies)
        if accepted < len(replies):
            statuses = sorted({str(r.status or r.error) for r in replies if not r.accepted})
            raise Inconclusive(
                f"{len(replies) - accepted} burst deliveries were refused, but not as throttled "
                f"({', '.join(statuses)}): no proof of a limit either way"
            )
        return [
            self.finding(
                Evidence(
                    f"{len(replies)} deliveries in a burst (legitimate identity)",
                    200,
                    f"{accepted} accepted, none throttled",
                )
            )
        ]


@register
class NoRetryAfter(Check):
    id = "rate.no-retry-after"
    category = Category.RATE_LIMITING
    severity = Severity.LOW
    title = "A 429 comes without a Retry-After header"
    remediation = (
        "Say when to retry: with HOOKSHIELD['ENDPOINTS']['<endpoint>']['RATE'] set, @webhook's "
        "429 carries Retry-After and the IETF RateLimit-Policy / RateLimit fields."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})
    last = True

    async def run(self, ctx: ScanContext) -> list[Finding]:
        limited = [r for r in await burst(ctx) if r.status == 429]
        if not limited:
            raise NotApplicable("no 429 in the burst: there is no refusal to inspect")
        bare = [r for r in limited if "retry-after" not in r.headers]
        return [self.finding(bare[0].evidence())] if bare else []
