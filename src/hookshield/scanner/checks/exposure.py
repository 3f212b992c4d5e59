"""Data exposure: what the answers give away (read from every answer of the scan)."""

from __future__ import annotations

import re
from dataclasses import replace

from hookshield.scanner.checks.input import MALFORMED, malformed_delivery
from hookshield.scanner.checks.inventory import MISSING, missing_path
from hookshield.scanner.context import Reply, ScanContext
from hookshield.scanner.model import Category, Finding, Severity
from hookshield.scanner.registry import Check, CheckSkipped, register

_DEBUG_MARKERS = (
    "Traceback (most recent call last)",
    "You're seeing this error because you have <code>DEBUG = True</code>",
    "You\u2019re seeing this error because you have <code>DEBUG = True</code>",
    'id="traceback"',
    "Exception Value:",
)
_VERSIONED = re.compile(r"\d+(?:\.\d+)+")


def _all_answers(ctx: ScanContext) -> list[Reply]:
    return [r for r in ctx.replies if r.status is not None]


@register
class DebugPage(Check):
    id = "exposure.debug-page"
    category = Category.DATA_EXPOSURE
    severity = Severity.HIGH
    title = "A response carries a framework debug page or a Python traceback"
    remediation = (
        "Set DEBUG = False in production (manage.py check --deploy reports hookshield.W001); "
        "@webhook's refusals stay JSON without tracebacks either way."
    )
    last = True
    reads_answers = True

    async def run(self, ctx: ScanContext) -> list[Finding]:
        answers = _all_answers(ctx)
        # Debug pages come with errors: a malformed delivery's 500 and a missing path's 404.
        # Sent here when the scan did not send them (this check run alone, or with others).
        for label, provoke in ((MALFORMED, malformed_delivery), (MISSING, missing_path)):
            if not any(f"({label})" in reply.request for reply in answers):
                reply = await provoke(ctx)
                answers += [reply] if reply.status is not None else []
        for reply in answers:
            if any(marker in reply.body for marker in _DEBUG_MARKERS):
                return [self.finding(reply.evidence())]
        return []


@register
class PayloadEcho(Check):
    id = "exposure.payload-echo"
    category = Category.DATA_EXPOSURE
    severity = Severity.LOW
    title = "A response echoes the canary sent in the request body"
    remediation = (
        "Answer a delivery with a short acknowledgement, never its content: return the "
        "request.webhook.delivery_id from the @webhook view, or {'ok': true}."
    )
    last = True
    reads_answers = True

    async def run(self, ctx: ScanContext) -> list[Finding]:
        if ctx.canary.encode() not in ctx.payload:
            # A --payload of the user's own carries no canary: no answer could show the echo,
            # and a pass would claim what was never tested.
            raise CheckSkipped(
                "needs the default payload: the --payload given carries no canary "
                "(--skip exposure.payload-echo leaves it out of the coverage)"
            )
        for reply in _all_answers(ctx):
            if ctx.canary in reply.body:
                return [self.finding(reply.evidence())]
        return []


@register
class ServerBanner(Check):
    id = "exposure.server-banner"
    category = Category.DATA_EXPOSURE
    severity = Severity.INFO
    title = "A Server or X-Powered-By header names software and version"
    remediation = "Hide versions at the terminator (nginx: server_tokens off)."
    last = True
    reads_answers = True

    async def run(self, ctx: ScanContext) -> list[Finding]:
        for reply in _all_answers(ctx):
            for name in ("server", "x-powered-by"):
                value = reply.headers.get(name, "")
                if _VERSIONED.search(value):
                    # The header is the evidence; the body is beside the point.
                    evidence = replace(reply.evidence(f"{name}: {value}"), excerpt="")
                    return [self.finding(evidence)]
        return []
