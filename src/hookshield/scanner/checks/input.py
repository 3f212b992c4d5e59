"""Input validation: hostile bodies must get a 4xx, never a 5xx or an acceptance."""

from __future__ import annotations

from hookshield.scanner.context import Reply, ScanContext
from hookshield.scanner.model import Category, Finding, Severity
from hookshield.scanner.registry import Check, Inconclusive, Need, register

OVERSIZED = 8 * 1024 * 1024
DEEP = 10_000


def _is_5xx(status: int | None) -> bool:
    return status is not None and status >= 500


def _answered(reply: Reply) -> Reply:
    """``reply``, when it is an HTTP answer: a probe after which the connection dropped may
    have crashed the worker or met the network, and proves neither a 5xx nor its absence."""
    if reply.status is None:
        raise Inconclusive(f"{reply.request}: no HTTP answer ({reply.error})")
    return reply


MALFORMED = "malformed JSON"  # the label of its delivery, which exposure.debug-page looks for


async def malformed_delivery(ctx: ScanContext) -> Reply:
    """The baseline delivery with a body that is not JSON (cut off mid-object)."""
    return await ctx.deliver(body=b'{"type": "hookshield.scan", "data": {', label=MALFORMED)


@register
class MalformedJson5xx(Check):
    id = "input.malformed-json-5xx"
    category = Category.INPUT_VALIDATION
    severity = Severity.MEDIUM
    title = "A malformed JSON body gets a 5xx"
    remediation = (
        "Parse bodies in the guard, not in the view: @webhook answers 400 malformed_body to "
        "invalid JSON and hands the view request.webhook.json already parsed."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        reply = _answered(await malformed_delivery(ctx))
        return [self.finding(reply.evidence())] if _is_5xx(reply.status) else []


@register
class OversizedBody(Check):
    id = "input.oversized-body"
    category = Category.INPUT_VALIDATION
    severity = Severity.MEDIUM
    title = "A body far above any sane webhook size is accepted"
    remediation = (
        "Set HOOKSHIELD['ENDPOINTS']['<endpoint>']['MAX_BODY'] (default 256 KiB): @webhook refuses "
        "larger bodies from Content-Length before reading (413), and cap bodies at the proxy too "
        "(nginx client_max_body_size)."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        padding = b"x" * (OVERSIZED - 64)
        body = b'{"type": "hookshield.scan", "padding": "' + padding + b'"}'
        reply = await ctx.deliver(body=body, label=f"{len(body) // 1024} KiB JSON body")
        return self.if_accepted(reply)


@register
class WrongContentType(Check):
    id = "input.wrong-content-type"
    category = Category.INPUT_VALIDATION
    severity = Severity.LOW
    title = "A non-JSON content type is accepted"
    remediation = (
        "Accept only the media types the sender uses: HOOKSHIELD['ENDPOINTS']['<endpoint>']"
        "['CONTENT_TYPES'] (default ['application/json']); others get 415."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        replies = [
            await ctx.deliver(content_type=content_type, label=f"Content-Type {content_type}")
            for content_type in ("text/plain", "application/x-www-form-urlencoded")
        ]
        return self.if_accepted(*replies)


@register
class DeepNesting(Check):
    id = "input.deep-nesting"
    category = Category.INPUT_VALIDATION
    severity = Severity.MEDIUM
    title = "Deeply nested JSON gets a 5xx or answers far slower than the baseline"
    remediation = (
        "Bound JSON before the view sees it: @webhook refuses nesting beyond "
        "HOOKSHIELD['ENDPOINTS']['<endpoint>']['MAX_JSON_DEPTH'] (default 32) with 400."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        body = b'{"type": "hookshield.scan", "data": ' + b"[" * DEEP + b"]" * DEEP + b"}"
        reply = _answered(await ctx.deliver(body=body, label=f"JSON nested {DEEP} deep"))
        baseline = ctx.baseline.elapsed_ms if ctx.baseline else 0.0
        slow = reply.status is not None and reply.elapsed_ms > max(2000.0, 20 * baseline)
        if _is_5xx(reply.status) or slow:
            note = f"{reply.elapsed_ms:.0f} ms against a {baseline:.0f} ms baseline" if slow else ""
            return [self.finding(reply.evidence(note))]
        return []


@register
class InvalidUtf85xx(Check):
    id = "input.invalid-utf8-5xx"
    category = Category.INPUT_VALIDATION
    severity = Severity.LOW
    title = "A body with invalid UTF-8 gets a 5xx"
    remediation = "Decode in the guard: @webhook answers 400 malformed_body to invalid UTF-8."
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        reply = _answered(
            await ctx.deliver(
                body=b'{"type": "hookshield.scan", "name": "\xff\xfe\xfd"}', label="invalid UTF-8"
            )
        )
        return [self.finding(reply.evidence())] if _is_5xx(reply.status) else []
