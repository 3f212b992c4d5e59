"""The engine: baseline first, then every check under the budget and the time cap.

Checks run concurrently (each request passes the context's semaphore); the rate-limit burst and
the checks that read every answer run last. The engine owns each check's outcome.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

import httpx

from hookshield import __version__
from hookshield.core.redact import without_credentials
from hookshield.scanner import checks as _checks  # noqa: F401  (registers every check)
from hookshield.scanner.context import (
    BudgetExhausted,
    NoAnswer,
    Reply,
    ScanConfig,
    ScanContext,
    Throttled,
)
from hookshield.scanner.model import CheckResult, Evidence, Finding, Outcome, Report, coverage
from hookshield.scanner.profiles import Profiles
from hookshield.scanner.registry import (
    CHECKS,
    Check,
    CheckSkipped,
    Inconclusive,
    Need,
    NotApplicable,
)
from hookshield.scanner.scoring import grade, score

__all__ = ["Observer", "Unreachable", "run_scan", "scan", "selected_checks"]


class Unreachable(Exception):
    """Not even the baseline got an HTTP answer (exit code 3)."""


class Observer(Protocol):
    def scan_started(self, target: str, checks: int) -> None: ...

    def check_done(self, result: CheckResult) -> None: ...

    def notice(self, message: str) -> None:
        """Something the person running the scan should know now (a terminal shows it)."""


class _Silent:
    def scan_started(self, target: str, checks: int) -> None:
        pass

    def check_done(self, result: CheckResult) -> None:
        pass

    def notice(self, message: str) -> None:
        pass


def selected_checks(ids: Sequence[str] = ()) -> list[type[Check]]:
    unknown = sorted(set(ids) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check ids: {', '.join(unknown)}")
    return [cls for check_id, cls in sorted(CHECKS.items()) if not ids or check_id in ids]


def _unmet(check: type[Check], ctx: ScanContext) -> list[Need]:
    config, profiles = ctx.config, ctx.profiles
    have = {
        Need.CLIENT_CERT: config.legit is not None,
        Need.FOREIGN_CERT: config.foreign is not None
        or (config.mint_ca is not None and config.legit is not None),
        Need.MINT_CA: profiles.mint is not None and config.legit is not None,
        Need.SIGNING_SECRET: config.signing_secret is not None,
        Need.HTTPS: config.https,
        Need.ACCEPTED_BASELINE: True,  # decided separately: unmet means inconclusive
    }
    return [need for need in sorted(check.needs) if not have[need]]


def _blocked(check: Check, ctx: ScanContext) -> tuple[Outcome, str] | None:
    """Why ``check`` cannot run against this configuration and baseline, if it cannot."""
    unmet = _unmet(type(check), ctx)
    if Need.HTTPS in unmet:  # a plain-HTTP target has no TLS to probe
        return Outcome.NOT_APPLICABLE, "needs " + Need.HTTPS.value
    if unmet:
        return Outcome.SKIPPED, "needs " + "; ".join(n.value for n in unmet)
    baseline = ctx.baseline
    if Need.ACCEPTED_BASELINE in check.needs and (baseline is None or not baseline.accepted):
        why = "not sent" if baseline is None else (baseline.error or f"answered {baseline.status}")
        return Outcome.INCONCLUSIVE, f"the baseline delivery was refused ({why})"
    return None


def _interrupted(exc: Exception) -> tuple[Outcome, str]:
    """The outcome of a check that raised ``exc``, tested in order of precedence."""
    if isinstance(exc, NotApplicable):
        return Outcome.NOT_APPLICABLE, str(exc)
    if isinstance(exc, BudgetExhausted | CheckSkipped):
        return Outcome.SKIPPED, str(exc)
    if isinstance(exc, Throttled):
        return Outcome.INCONCLUSIVE, f"throttled: {exc}"
    if isinstance(exc, NoAnswer):
        return Outcome.INCONCLUSIVE, str(exc)
    if isinstance(exc, Inconclusive):
        return Outcome.INCONCLUSIVE, str(exc)
    if isinstance(exc, TimeoutError):
        return Outcome.SKIPPED, "not finished within --max-duration"
    return Outcome.ERROR, f"{type(exc).__name__}: {exc}"


async def _run_one(check: Check, ctx: ScanContext, deadline: float | None) -> CheckResult:
    def result(outcome: Outcome, reason: str = "", findings: Sequence[Finding] = ()) -> CheckResult:
        # What a target answered may echo a secret the scan sent (a debug page lists headers).
        shown_findings = tuple(
            replace(f, evidence=_redacted(f.evidence, ctx.redact)) for f in findings
        )
        return CheckResult(
            check.id,
            check.category,
            check.severity,
            check.title,
            outcome,
            shown_findings,
            ctx.redact(reason),
        )

    blocked = _blocked(check, ctx)
    if blocked is not None:
        return result(*blocked)
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        return result(Outcome.SKIPPED, "not reached within --max-duration")
    try:
        findings = await asyncio.wait_for(check.run(ctx), remaining)
    except Exception as exc:  # one broken check never sinks the scan; its outcome says why
        return result(*_interrupted(exc))
    return result(Outcome.FAILED if findings else Outcome.PASSED, findings=findings)


def _redacted(evidence: Evidence, redact: Callable[[str], str]) -> Evidence:
    control = None if evidence.control is None else _redacted(evidence.control, redact)
    return replace(
        evidence,
        request=redact(evidence.request),
        excerpt=redact(evidence.excerpt),
        control=control,
    )


INCOMPLETE = "incomplete"


def shown(text: str) -> str:
    """What a report or a progress line may show of the target: credentials in URLs masked."""
    return without_credentials(text, "***")


def _incomplete(
    baseline: Reply | None, results: list[CheckResult], min_coverage: float
) -> str | None:
    """Why the scan may not be graded: an untested endpoint must never pass a gate."""
    if baseline is None or not baseline.accepted:
        status = "not sent" if baseline is None else baseline.status or baseline.error
        return f"the baseline delivery was refused ({status}): the probes compared with nothing"
    ran, applicable = coverage(results)
    if not applicable:
        return "no selected check is applicable to this target: nothing was tested"
    if ran / applicable < min_coverage:
        return (
            f"coverage {ran}/{applicable} checks is below --min-coverage {min_coverage:g} "
            "(skipped and inconclusive checks were not tested)"
        )
    return None


async def run_scan(
    config: ScanConfig,
    observer: Observer | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Scan ``config.url``; ``transport`` replaces the network for every HTTP request (tests)."""
    observer = observer or _Silent()
    checks = [cls() for cls in selected_checks(config.checks)]
    profiles = Profiles(legit=config.legit, foreign=config.foreign, mint_ca=config.mint_ca)
    ctx = ScanContext(config, profiles, transport=transport, notice=observer.notice)
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    deadline = None if config.max_duration is None else clock + config.max_duration
    observer.scan_started(shown(config.url), len(checks))
    try:
        ctx.baseline = await _baseline(ctx)
        results: list[CheckResult] = []

        async def one(check: Check) -> None:
            done = await _run_one(check, ctx, deadline)
            results.append(done)
            observer.check_done(done)

        await asyncio.gather(*(one(c) for c in checks if not c.last))
        gone = await _still_answering(ctx, deadline)
        for check in sorted((c for c in checks if c.last), key=lambda c: c.reads_answers):
            await one(check)
    finally:
        await ctx.close()
        profiles.close()
    return _report(config, ctx, results, started, time.monotonic() - clock, gone)


async def _baseline(ctx: ScanContext) -> Reply:
    """The legitimate delivery every probe is compared with. Nothing answering it ends the scan
    (``Unreachable``); a refusal, in the TLS handshake too, is reported as a refused baseline."""
    try:
        baseline = await ctx.deliver(
            ctx.baseline_profile, label="baseline", throttle_is_evidence=True
        )
    except BudgetExhausted as exc:
        raise Unreachable(f"no request could be sent: {exc}") from exc
    except NoAnswer as exc:
        raise Unreachable(shown(f"{ctx.config.url}: {ctx.replies[-1].error}")) from exc
    # A refusal in the handshake (a client certificate the terminator does not take) is an
    # answer: the report says the baseline was refused and why, and grades nothing.
    return baseline


async def _still_answering(ctx: ScanContext, deadline: float | None) -> str | None:
    """Why the target no longer answers the baseline as it did, if it does not.

    Sent again once the probes are done (before the rate-limit burst, whose 429s would answer
    it): a target that went down meanwhile, or one whose proxy now answers 502 for an
    application gone, refused every probe in a way that proves nothing.
    """
    if ctx.baseline is None or not ctx.baseline.accepted:
        return None  # the scan is incomplete already
    if ctx.sent <= 1 or (deadline is not None and time.monotonic() >= deadline):
        return None  # no probe was sent, or --max-duration left them (and this) out
    label = "baseline again, after the probes"
    try:
        again = await ctx.deliver(ctx.baseline_profile, label=label, throttle_is_evidence=True)
    except BudgetExhausted:
        return None  # the checks it left out already make the scan incomplete
    except NoAnswer as exc:
        return f"{exc}: the target stopped answering during the scan"
    if again.accepted or again.throttled:
        return None
    status = again.status or again.error
    return f"the baseline delivery sent again after the probes was refused ({status})"


def _report(
    config: ScanConfig,
    ctx: ScanContext,
    results: list[CheckResult],
    started: dt.datetime,
    duration_s: float,
    gone: str | None,
) -> Report:
    results.sort(key=lambda r: r.id)
    overall, categories = score(results)
    incomplete = _incomplete(ctx.baseline, results, config.min_coverage)
    if incomplete is None and gone is not None:
        incomplete = f"{gone}: the probes' refusals prove nothing"
    return Report(
        tool_version=__version__,
        target=shown(config.url),
        started_at=started,
        duration_s=duration_s,
        requests_sent=ctx.sent,
        results=tuple(results),
        score=overall,
        grade=INCOMPLETE if incomplete else grade(overall),
        categories=categories,
        throttled=ctx.throttled,
        burst=ctx.burst,
        incomplete=incomplete,
    )


def scan(config: ScanConfig, observer: Observer | None = None) -> Report:
    return asyncio.run(run_scan(config, observer))
