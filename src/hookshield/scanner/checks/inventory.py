"""Inventory: does a 404 page list the application's URL patterns?"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

from hookshield.scanner.context import Reply, ScanContext
from hookshield.scanner.model import Category, Finding, Severity
from hookshield.scanner.registry import Check, register

_MARKERS = ("Using the URLconf defined in", "Django tried these URL patterns")
MISSING = "a path that does not exist"  # the label of its GET, which exposure.debug-page looks for


@register
class UrlPatternsLeak(Check):
    id = "inventory.url-patterns-leak"
    category = Category.INVENTORY
    severity = Severity.MEDIUM
    title = "A 404 page lists the application's URL patterns"
    remediation = (
        "Set DEBUG = False in production: Django's debug 404 lists every URL pattern, which maps "
        "the webhooks and admin for an attacker."
    )

    async def run(self, ctx: ScanContext) -> list[Finding]:
        reply = await missing_path(ctx)
        if reply.status == 404 and any(m in reply.body for m in _MARKERS):
            return [self.finding(reply.evidence())]
        return []


async def missing_path(ctx: ScanContext) -> Reply:
    """A GET, as the baseline's caller, of a path on the target's host that cannot exist."""
    parts = urlsplit(ctx.config.url)
    missing = urlunsplit(parts._replace(path=f"/hookshield-scan-{secrets.token_hex(4)}/", query=""))
    profile = ctx.baseline_profile
    return await ctx.deliver(profile, method="GET", sign=False, url=missing, label=MISSING)
