"""Every scanner check against fake receivers: the flaw found, its absence, and no verdict.

One table, one case per (check, scenario): the receiver (``tests/scanner/fake_receiver.py``,
the hardened endpoint with one rule loosened), what the scanner is given, and the outcome with
its evidence. The real-server tests (``tests/integration/test_scanner.py``) show the same
checks against nginx, HAProxy and the guard; these pin each check's reasoning, fast.

``NO_VERDICT`` is whatever the check's contract says when its probes prove nothing: inconclusive
(the baseline refused, a probe throttled), not applicable (masked by a broader flaw, or the
target cannot express it) or skipped (an input missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.model import CheckResult, Outcome, Report
from hookshield.scanner.profiles import ClientFiles
from hookshield.scanner.registry import CHECKS
from tests.conftest import TestPki
from tests.scanner.fake_receiver import (
    HARDENED,
    NAIVE,
    PATH,
    Endpoint,
    Match,
    Receiver,
    Trust,
    World,
    server_certs,
    serving,
)

URL = f"https://hooks.example.test:8443{PATH}"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test key


class Scenario(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not-found"
    NO_VERDICT = "no-verdict"


_DEFAULT_OUTCOME = {Scenario.FOUND: Outcome.FAILED, Scenario.NOT_FOUND: Outcome.PASSED}


@dataclass(frozen=True)
class Case:
    """One scan of one check against one receiver, and what the report must say about it.

    ``config`` overrides the scan's inputs (None drops one: ``{"mint_ca": None}``); ``also``
    runs checks whose answers this one reads. For a finding: ``request`` is in the first
    finding's evidence, ``status`` is its answer and ``control`` the answer to its control (None:
    the check uses no control; with one, every finding carries its refused control). Otherwise
    ``reason`` is in the result's reason.
    """

    check: str
    scenario: Scenario
    label: str
    receiver: Receiver
    outcome: Outcome | None = None  # None: FAILED for FOUND, PASSED for NOT_FOUND
    request: str = ""
    status: int | None = 200
    control: int | None = None
    reason: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    also: tuple[str, ...] = ()

    @property
    def expected(self) -> Outcome:
        return self.outcome or _DEFAULT_OUTCOME[self.scenario]

    @property
    def id(self) -> str:
        return f"{self.check}:{self.scenario}:{self.label}"


F, N, X = Scenario.FOUND, Scenario.NOT_FOUND, Scenario.NO_VERDICT
INCONCLUSIVE, NOT_APPLICABLE = Outcome.INCONCLUSIVE, Outcome.NOT_APPLICABLE
SKIPPED = Outcome.SKIPPED
BASELINE_REFUSED = "the baseline delivery was refused"
REFUSES_LEGIT = HARDENED.but(allow=("spiffe://corp.example/someone-else",))
THROTTLES_PROBES = HARDENED.but(throttle_after=1)  # the baseline passes, every probe gets 429
NO_CERT_PLEASE = HARDENED.but(trust=Trust.NOTHING)  # any caller, otherwise hardened
BELIEVER = HARDENED.but(believes="X-SSL-Client-Cert")
HTTP_URL = {"url": f"http://hooks.example.test:8080{PATH}"}
PLAIN_NAIVE = NAIVE.but(plain_http=True)  # the naive app on a plain-HTTP port
NO_FOREIGN = {"foreign": None, "mint_ca": None}

CASES = [
    # auth.no-client-cert
    Case("auth.no-client-cert", F, "any-caller", NO_CERT_PLEASE, request="no client certificate"),
    Case("auth.no-client-cert", N, "hardened", HARDENED),
    Case("auth.no-client-cert", X, "baseline-refused", REFUSES_LEGIT, INCONCLUSIVE,
         reason=BASELINE_REFUSED),
    Case("auth.no-client-cert", X, "throttled", THROTTLES_PROBES, INCONCLUSIVE, reason="throttled"),
    # auth.untrusted-cert
    Case("auth.untrusted-cert", F, "any-certificate", HARDENED.but(trust=Trust.ANY_CERT),
         request="unknown CA", control=401),
    Case("auth.untrusted-cert", N, "hardened", HARDENED),
    Case("auth.untrusted-cert", N, "names-only", HARDENED.but(trust=Trust.NAMES)),
    Case("auth.untrusted-cert", X, "masked", NO_CERT_PLEASE, NOT_APPLICABLE, reason="masked",
         also=("auth.no-client-cert",)),
    # Masked by a check left out of the scan: nothing reports the flaw, no gate may pass.
    Case("auth.untrusted-cert", X, "masker-not-run", NO_CERT_PLEASE, INCONCLUSIVE,
         reason="not part of this scan"),
    Case("auth.untrusted-cert", X, "plain-http", PLAIN_NAIVE, NOT_APPLICABLE, reason="https",
         config=HTTP_URL),
    # auth.forged-subject
    Case("auth.forged-subject", F, "names-only", HARDENED.but(trust=Trust.NAMES),
         request="self-signed copy", control=401),
    Case("auth.forged-subject", N, "hardened", HARDENED),
    Case("auth.forged-subject", X, "masked", NO_CERT_PLEASE, NOT_APPLICABLE, reason="masked",
         also=("auth.no-client-cert",)),
    Case("auth.forged-subject", X, "baseline-refused", REFUSES_LEGIT, INCONCLUSIVE,
         reason=BASELINE_REFUSED),
    # auth.expired-cert
    Case("auth.expired-cert", F, "dates-ignored", HARDENED.but(trust=Trust.ISSUER),
         request="expired certificate", control=401),
    Case("auth.expired-cert", N, "hardened", HARDENED),
    Case("auth.expired-cert", X, "no-mint-ca", HARDENED.but(trust=Trust.ISSUER), SKIPPED,
         reason="--mint-ca", config={"mint_ca": None}),
    Case("auth.expired-cert", X, "throttled", THROTTLES_PROBES, INCONCLUSIVE, reason="throttled"),
    # auth.spoofed-identity-header
    Case("auth.spoofed-identity-header", F, "without-certificate", BELIEVER,
         request="no client certificate, forged nginx headers", control=401),
    Case("auth.spoofed-identity-header", F, "on-a-foreign-certificate",
         BELIEVER.but(terminator_requires_cert=True),
         request="another valid identity, forged nginx headers", control=403),
    Case("auth.spoofed-identity-header", N, "hardened", HARDENED),
    Case("auth.spoofed-identity-header", X, "no-route", BELIEVER.but(terminator_requires_cert=True),
         INCONCLUSIVE, reason="No required SSL certificate was sent", config=NO_FOREIGN),
    Case("auth.spoofed-identity-header", X, "masked", NO_CERT_PLEASE, NOT_APPLICABLE,
         reason="masked", also=("auth.no-client-cert",)),
    # auth.method-bypass
    Case("auth.method-bypass", F, "get-unguarded", HARDENED.but(unguarded=frozenset({"GET"})),
         request="GET /hooks/payments/ (GET without credentials)", control=401),
    Case("auth.method-bypass", X, "masked", NO_CERT_PLEASE, NOT_APPLICABLE, reason="masked",
         also=("auth.no-client-cert",)),
    Case("auth.method-bypass", N, "hardened", HARDENED),
    Case("auth.method-bypass", X, "throttled", THROTTLES_PROBES, INCONCLUSIVE, reason="throttled"),
    # auth.tls-client-auth-optional
    Case("auth.tls-client-auth-optional", F, "application-refuses", HARDENED,
         request="reached the application", status=401),
    Case("auth.tls-client-auth-optional", F, "accepted", NO_CERT_PLEASE, request="was accepted"),
    Case("auth.tls-client-auth-optional", N, "nginx-verify-on",
         HARDENED.but(terminator_requires_cert=True)),
    Case("auth.tls-client-auth-optional", N, "handshake-refused",
         HARDENED.but(handshake_requires_cert=True)),
    Case("auth.tls-client-auth-optional", X, "plain-http", PLAIN_NAIVE, NOT_APPLICABLE,
         reason="https", config=HTTP_URL),
    Case("auth.tls-client-auth-optional", X, "throttled", THROTTLES_PROBES.but(throttle_after=0),
         INCONCLUSIVE, reason="throttled"),
    # authz.foreign-identity
    Case("authz.foreign-identity", F, "any-identity", HARDENED.but(match=Match.ANY),
         request="another valid identity", control=401),
    Case("authz.foreign-identity", N, "hardened", HARDENED),
    Case("authz.foreign-identity", X, "masked", NO_CERT_PLEASE, NOT_APPLICABLE, reason="masked",
         also=("auth.no-client-cert",)),
    Case("authz.foreign-identity", X, "no-foreign", HARDENED, SKIPPED, reason="--foreign-cert",
         config=NO_FOREIGN),
    # authz.identity-confusion
    Case("authz.identity-confusion", F, "substring-match", HARDENED.but(match=Match.SUBSTRING),
         request="look-alike: spiffe-prefix", control=403),
    Case("authz.identity-confusion", F, "dn-split-on-commas",
         HARDENED.but(match=Match.DN_SPLIT, allow=("payments-gateway",)),
         request="look-alike: dn-escaped-comma", control=403),
    Case("authz.identity-confusion", N, "hardened", HARDENED),
    Case("authz.identity-confusion", X, "masked", HARDENED.but(match=Match.ANY), NOT_APPLICABLE,
         reason="masked", also=("authz.foreign-identity",)),
    Case("authz.identity-confusion", X, "no-mint-ca", HARDENED, SKIPPED, reason="--mint-ca",
         config={"mint_ca": None}),
    # input.*
    Case("input.malformed-json-5xx", F, "crashes", HARDENED.but(handles=()),
         request="malformed JSON", status=500),
    Case("input.malformed-json-5xx", N, "hardened", HARDENED),
    Case("input.malformed-json-5xx", X, "baseline-refused", REFUSES_LEGIT, INCONCLUSIVE,
         reason=BASELINE_REFUSED),
    Case("input.malformed-json-5xx", X, "throttled", THROTTLES_PROBES, INCONCLUSIVE,
         reason="throttled"),
    Case("input.malformed-json-5xx", X, "no-answer", HARDENED.but(handles=(), dies=True),
         INCONCLUSIVE, reason="no HTTP answer"),
    Case("input.oversized-body", F, "no-limit", HARDENED.but(max_body=None),
         request="8191 KiB JSON body"),
    Case("input.oversized-body", N, "hardened", HARDENED),
    Case("input.oversized-body", X, "throttled", THROTTLES_PROBES, INCONCLUSIVE,
         reason="throttled"),
    Case("input.wrong-content-type", F, "any-type", HARDENED.but(content_types=None),
         request="Content-Type text/plain"),
    Case("input.wrong-content-type", N, "hardened", HARDENED),
    Case("input.wrong-content-type", X, "baseline-refused", REFUSES_LEGIT, INCONCLUSIVE,
         reason=BASELINE_REFUSED),
    Case("input.deep-nesting", F, "recursion-uncaught", HARDENED.but(handles=(ValueError,)),
         request="JSON nested 10000 deep", status=500),
    Case("input.deep-nesting", N, "hardened", HARDENED),
    Case("input.deep-nesting", X, "throttled", THROTTLES_PROBES, INCONCLUSIVE, reason="throttled"),
    # The worker dies: the crash itself, or the network; never a pass.
    Case("input.deep-nesting", X, "no-answer", HARDENED.but(handles=(ValueError,), dies=True),
         INCONCLUSIVE, reason="no HTTP answer"),
    Case("input.invalid-utf8-5xx", F, "decode-uncaught", HARDENED.but(handles=(RecursionError,)),
         request="invalid UTF-8", status=500),
    Case("input.invalid-utf8-5xx", N, "hardened", HARDENED),
    Case("input.invalid-utf8-5xx", X, "baseline-refused", REFUSES_LEGIT, INCONCLUSIVE,
         reason=BASELINE_REFUSED),
    Case("input.invalid-utf8-5xx", X, "no-answer", HARDENED.but(handles=(), dies=True),
         INCONCLUSIVE, reason="no HTTP answer"),
    # rate.* (burst of 6 in the scan's config; the baseline is the receiver's first request)
    Case("rate.no-limit", F, "no-limit", HARDENED, request="6 deliveries in a burst"),
    Case("rate.no-limit", N, "429-after-3", HARDENED.but(throttle_after=3)),
    Case("rate.no-limit", X, "refused-not-throttled", HARDENED.but(overload_after=3),
         INCONCLUSIVE, reason="not as throttled"),
    Case("rate.no-limit", X, "budget-short", HARDENED, SKIPPED, reason="budget",
         config={"budget": 4}),
    Case("rate.no-retry-after", F, "bare-429", HARDENED.but(throttle_after=3, retry_after=False),
         request="burst", status=429),
    Case("rate.no-retry-after", N, "retry-after", HARDENED.but(throttle_after=3)),
    Case("rate.no-retry-after", X, "no-429", HARDENED, NOT_APPLICABLE, reason="no 429"),
    Case("rate.no-retry-after", X, "baseline-refused", REFUSES_LEGIT, INCONCLUSIVE,
         reason=BASELINE_REFUSED),
    # exposure.* (they read the answers every other check got)
    Case("exposure.debug-page", F, "debug-500", HARDENED.but(handles=(), debug=True),
         request="malformed JSON", status=500, also=("input.malformed-json-5xx",)),
    Case("exposure.debug-page", F, "debug-404", HARDENED.but(debug=True),
         request="a path that does not exist", status=404, also=("inventory.url-patterns-leak",)),
    # The answers to the rate-limit burst are answers too.
    Case("exposure.debug-page", F, "debug-500-in-the-burst",
         HARDENED.but(debug=True, crash_after=3), request="(burst)", status=500,
         also=("rate.no-limit",)),
    Case("exposure.debug-page", N, "plain-500", HARDENED.but(handles=()),
         also=("input.malformed-json-5xx",)),
    # Alone, the baseline's 200 is the only answer: the check provokes the errors itself.
    Case("exposure.debug-page", F, "alone-debug-500", HARDENED.but(handles=(), debug=True),
         request="malformed JSON", status=500),
    Case("exposure.debug-page", F, "alone-debug-404", HARDENED.but(debug=True),
         request="a path that does not exist", status=404),
    Case("exposure.debug-page", N, "alone-hardened", HARDENED),
    # Another check's refusal (a 401) is no error a debug page comes with: provoked anyway.
    Case("exposure.debug-page", F, "with-a-401", HARDENED.but(handles=(), debug=True),
         request="malformed JSON", status=500, also=("auth.no-client-cert",)),
    Case("exposure.debug-page", X, "out-of-time", NAIVE, SKIPPED, reason="--max-duration",
         config={"max_duration": 0}),
    Case("exposure.payload-echo", F, "echo", HARDENED.but(echo=True), request="baseline"),
    Case("exposure.payload-echo", N, "hardened", HARDENED),
    # A payload of the user's own carries no canary: a pass would claim what was not tested.
    Case("exposure.payload-echo", X, "own-payload", HARDENED.but(echo=True), SKIPPED,
         reason="canary", config={"payload": b'{"type": "invoice.paid", "id": "evt_1"}'}),
    Case("exposure.server-banner", F, "nginx-version", HARDENED.but(server="nginx/1.2.3"),
         request="server: nginx/1.2.3"),
    Case("exposure.server-banner", N, "no-version", HARDENED),
    Case("exposure.server-banner", X, "out-of-time", NAIVE, SKIPPED, reason="--max-duration",
         config={"max_duration": 0}),
    # tls.*
    Case("tls.plaintext-http", F, "http-served", NO_CERT_PLEASE.but(plain_http=True),
         request="plain HTTP to the same port"),
    Case("tls.plaintext-http", F, "http-on-port-80", NO_CERT_PLEASE.but(plain_http=True),
         request="plain HTTP to port 80", config={"url": f"https://hooks.example.test{PATH}"}),
    Case("tls.plaintext-http", F, "http-url", PLAIN_NAIVE, request="baseline", config=HTTP_URL),
    Case("tls.plaintext-http", N, "nginx-400", NO_CERT_PLEASE),
    # Nothing listens for plain HTTP (port 80 closed): what the check wants, not "no answer".
    Case("tls.plaintext-http", N, "port-closed", NO_CERT_PLEASE.but(plain_port_closed=True)),
    Case("tls.plaintext-http", X, "throttled", THROTTLES_PROBES.but(plain_http=True),
         INCONCLUSIVE, reason="throttled"),
    Case("tls.legacy-protocol", F, "tls-1.0-and-1.1", HARDENED.but(legacy_tls=True),
         request="TLSv1 handshake", status=None),
    # The probe carries the legitimate certificate: without it this terminator ends every
    # handshake, TLS 1.0 included, and the check passed.
    Case("tls.legacy-protocol", F, "client-cert-required",
         HARDENED.but(legacy_tls=True, handshake_requires_cert=True),
         request="TLSv1 handshake", status=None),
    Case("tls.legacy-protocol", N, "tls-1.2-up", HARDENED),
    Case("tls.legacy-protocol", N, "tls-1.2-up-without-cert", HARDENED, config={"legit": None}),
    Case("tls.legacy-protocol", X, "no-cert-for-a-strict-terminator",
         HARDENED.but(legacy_tls=True, handshake_requires_cert=True), SKIPPED,
         reason="--cert", config={"legit": None}),
    Case("tls.legacy-protocol", X, "plain-http", PLAIN_NAIVE, NOT_APPLICABLE, reason="https",
         config=HTTP_URL),
    Case("tls.weak-server-cert", F, "expired", HARDENED.but(server_cert="expired"),
         request="server certificate", status=None),
    Case("tls.weak-server-cert", F, "rsa-1024", HARDENED.but(server_cert="rsa-1024"),
         request="server certificate", status=None),
    Case("tls.weak-server-cert", F, "untrusted", HARDENED.but(server_trusted=False),
         request="server certificate", status=None),
    Case("tls.weak-server-cert", N, "good", HARDENED),
    Case("tls.weak-server-cert", X, "no-handshake", HARDENED.but(handshake_requires_cert=True),
         SKIPPED, reason="no TLS handshake", config={"legit": None}),
    Case("tls.weak-server-cert", X, "plain-http", PLAIN_NAIVE, NOT_APPLICABLE, reason="https",
         config=HTTP_URL),
    # inventory.*
    Case("inventory.url-patterns-leak", F, "debug-404", HARDENED.but(debug=True),
         request="a path that does not exist", status=404),
    Case("inventory.url-patterns-leak", N, "plain-404", HARDENED),
    Case("inventory.url-patterns-leak", X, "throttled", THROTTLES_PROBES, INCONCLUSIVE,
         reason="throttled"),
]  # fmt: skip

SIGNED = HARDENED.but(secret=SECRET)
SIGNING = {"signing_secret": SECRET}
REPLAY_CASES = [
    Case("replay.unsigned-accepted", F, "unsigned-taken", SIGNED.but(requires_signature=False),
         request="(unsigned)", config=SIGNING),
    Case("replay.unsigned-accepted", N, "hardened", SIGNED, config=SIGNING),
    Case("replay.unsigned-accepted", X, "no-secret", SIGNED, SKIPPED, reason="--signing-secret"),
    Case("replay.duplicate-accepted", F, "ids-forgotten", SIGNED.but(remembers_ids=False),
         request="the same delivery again", config=SIGNING),
    Case("replay.duplicate-accepted", N, "hardened", SIGNED, config=SIGNING),
    Case("replay.duplicate-accepted", X, "throttled", SIGNED.but(throttle_after=1), INCONCLUSIVE,
         reason="throttled", config=SIGNING),
    Case("replay.stale-timestamp", F, "any-age", SIGNED.but(tolerance=10**6),
         request="signed an hour ago", config=SIGNING),
    Case("replay.stale-timestamp", N, "hardened", SIGNED, config=SIGNING),
    Case("replay.stale-timestamp", X, "baseline-refused", SIGNED.but(allow=()), INCONCLUSIVE,
         reason=BASELINE_REFUSED, config=SIGNING),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> World:
    directory = tmp_path_factory.mktemp("fake-receiver")
    ca_key = directory / "ca.key"
    ca_key.write_bytes(
        pki.root.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    return World(
        legit=ClientFiles(*pki.files("named")),
        foreign=ClientFiles(*pki.files("other")),
        mint=ClientFiles(pki.ca_file, ca_key),
        ca=str(pki.ca_file),
        root=pki.root,
        server_certs=server_certs(pki.root),
    )


def scan_config(case: Case, world: World) -> ScanConfig:
    values: dict[str, Any] = {
        "url": URL,
        "legit": world.legit,
        "foreign": world.foreign,
        "mint_ca": world.mint,
        "ca": world.ca,
        "checks": (case.check, *case.also),
        "burst": 6,
        "concurrency": 2,
    }
    values.update(case.config)
    return ScanConfig(**values)


async def scan(case: Case, world: World, monkeypatch: pytest.MonkeyPatch) -> Report:
    endpoint = Endpoint(case.receiver, world)
    with serving(monkeypatch, endpoint) as clients:
        try:
            return await run_scan(scan_config(case, world))
        finally:
            for client in clients.values():
                await client.aclose()


def result_of(report: Report, check_id: str) -> CheckResult:
    (result,) = [r for r in report.results if r.id == check_id]
    return result


def assert_evidence(case: Case, result: CheckResult) -> None:
    assert result.findings, "a failed check carries its findings"
    assert {f.id for f in result.findings} == {case.check}
    first = result.findings[0].evidence
    assert case.request in first.request
    assert first.status == case.status
    if case.control is None:
        assert all(f.evidence.control is None for f in result.findings)
        return
    assert first.control is not None
    assert first.control.status == case.control
    for finding in result.findings:  # each beside its own control, which was refused
        control = finding.evidence.control
        assert control is not None, finding.evidence
        assert control.status is not None
        assert not 200 <= control.status < 300
        assert "(control)" in control.request


ALL_CASES = CASES + REPLAY_CASES


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ALL_CASES])
async def test_check(case: Case, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    result = result_of(await scan(case, world, monkeypatch), case.check)
    assert result.outcome is case.expected, result.reason or result.findings
    if case.expected is Outcome.FAILED:
        assert_evidence(case, result)
    else:
        assert not result.findings
        assert case.reason in result.reason


def test_every_check_has_each_scenario() -> None:
    covered: dict[str, set[Scenario]] = {}
    for case in ALL_CASES:
        covered.setdefault(case.check, set()).add(case.scenario)
    assert set(covered) <= set(CHECKS), "a case names no registered check"
    missing = {
        check_id: sorted(set(Scenario) - covered.get(check_id, set()))
        for check_id in sorted(CHECKS)
        if covered.get(check_id, set()) != set(Scenario)
    }
    assert not missing, f"checks without a unit test for these scenarios: {missing}"


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
