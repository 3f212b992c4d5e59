"""Every scanner check, both ways, against real servers on 127.0.0.1.

A naive deployment (no identity check, DEBUG on, permissive nginx, TLS 1.0, a server certificate
from a CA the scanner does not trust) has the flaws; a hardened one (nginx plus the guard fully
configured) has none of severity low or above. Flaws the naive target cannot show (it accepts
deliveries without any certificate, which masks every certificate flaw) get small targets of
their own: an app that wants any certificate behind a permissive HAProxy, glue that splits the
forwarded DN on commas, nginx setting the certificate header in one location only, a legacy
trust fallback, a bare 429, plain HTTP, a terminator that aborts the handshake without a client
certificate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.model import Outcome, Report, Severity
from hookshield.scanner.profiles import ClientFiles
from hookshield.scanner.registry import CHECKS
from tests.conftest import ALLOWED, GITHUB_SECRET, TestPki, guard_config
from tests.integration.servers import NginxServer, forget_counts, gunicorn_app, haproxy, nginx

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# nginx overwrites X-SSL-Client-Cert in location / only; this location forwards the certificate
# under another name, and a client's own X-SSL-Client-Cert passes untouched.
BELIEVER_LOCATION = """
        location /hooks/believer/ {
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
        }"""


@dataclass(frozen=True)
class Targets:
    hardened: str
    naive: str
    permissive: str  # HAProxy passing every certificate to a view that wants one, any one
    split_dn: str  # nginx ssl_verify_client on; the view splits the subject DN on commas
    believer: str  # same nginx; a location that does not set the certificate header
    fallback: str
    bare_limit: str
    plain_http: str
    strict_handshake: str  # HAProxy aborting handshakes without a client certificate
    any_valid: str  # HAProxy requiring a client certificate, the naive view taking any valid one
    files: dict[str, ClientFiles]
    ca: str


@pytest.fixture(scope="module")
def targets(
    pki: TestPki, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Targets]:
    base = tmp_path_factory.mktemp("scan-targets")
    ca_key = base / "ca.key"
    ca_key.write_bytes(
        pki.root.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    stranger_server = pki.stranger_ca.issue_server(["127.0.0.1"]).write(base, "stranger-server")
    combined = base / "server-combined.pem"
    combined.write_bytes(pki.server.cert_pem + pki.server.key_pem)
    hardened_config = guard_config(
        pki,
        RATE_LIMIT_STORAGE=redis_url,
        REPLAY_STORAGE=redis_url,
        ENDPOINTS={
            "strict": {"ALLOW": [ALLOWED], "RATE": "40/minute", "SIGNING_SECRETS": [SECRET]}
        },
    )
    forget_counts(redis_url, "strict")  # every run scans as the same identity
    server_cert, server_key = pki.files("server")
    with (
        gunicorn_app(base / "hardened", hardened_config) as hardened,
        gunicorn_app(base / "naive", hardened_config, workers=1, debug=True) as naive,
        nginx(
            base / "nginx",
            server_cert,
            server_key,
            pki.ca_file,
            [
                NginxServer(hardened.port),
                NginxServer(
                    naive.port,
                    verify_mode="optional_no_ca",
                    protocols="TLSv1 TLSv1.1 TLSv1.2",
                    ciphers="DEFAULT:@SECLEVEL=0",
                    tokens="on",
                    max_body="16m",
                    server_cert=stranger_server[0],
                    server_key=stranger_server[1],
                ),
                NginxServer(naive.port),
                NginxServer(
                    naive.port,
                    verify_mode="on",
                    extra="            proxy_set_header X-SSL-Client-S-DN $ssl_client_s_dn;",
                    locations=BELIEVER_LOCATION,
                ),
            ],
        ) as (hardened_port, naive_port, plain_nginx_port, verify_on_port),
        haproxy(
            base / "permissive",
            combined,
            pki.ca_file,
            naive.port,
            "verify optional crt-ignore-err all ca-ignore-err all",
        ) as permissive_port,
        haproxy(
            base / "strict", combined, pki.ca_file, hardened.port, "verify required"
        ) as strict_port,
        haproxy(
            base / "required", combined, pki.ca_file, naive.port, "verify required"
        ) as required_port,
    ):
        yield Targets(
            hardened=f"https://127.0.0.1:{hardened_port}/hooks/strict/",
            naive=f"https://127.0.0.1:{naive_port}/hooks/naive/",
            permissive=f"https://127.0.0.1:{permissive_port}/hooks/cert-present/",
            split_dn=f"https://127.0.0.1:{verify_on_port}/hooks/split-dn/",
            believer=f"https://127.0.0.1:{verify_on_port}/hooks/believer/",
            fallback=f"https://127.0.0.1:{plain_nginx_port}/hooks/fallback/",
            bare_limit=f"https://127.0.0.1:{plain_nginx_port}/hooks/bare-limit/",
            plain_http=f"http://127.0.0.1:{naive.port}/hooks/naive/",
            strict_handshake=f"https://127.0.0.1:{strict_port}/hooks/strict/",
            any_valid=f"https://127.0.0.1:{required_port}/hooks/naive/",
            files={
                "legit": ClientFiles(*pki.files("named")),
                "mint": ClientFiles(pki.ca_file, ca_key),
            },
            ca=str(pki.ca_file),
        )


def config(targets: Targets, url: str, **overrides: Any) -> ScanConfig:
    values: dict[str, Any] = {
        "url": url,
        "legit": targets.files["legit"],
        "mint_ca": targets.files["mint"],
        "ca": targets.ca,
        "signing_secret": SECRET,
    }
    values.update(overrides)
    return ScanConfig(**values)


async def scan(targets: Targets, url: str, **overrides: Any) -> Report:
    return await run_scan(config(targets, url, **overrides))


@pytest.fixture(scope="module")
def naive_report(targets: Targets) -> Report:
    import asyncio

    return asyncio.run(run_scan(config(targets, targets.naive)))


@pytest.fixture(scope="module")
def hardened_report(targets: Targets) -> Report:
    import asyncio

    return asyncio.run(run_scan(config(targets, targets.hardened)))


def outcome(report: Report, check_id: str) -> Outcome:
    (result,) = [r for r in report.results if r.id == check_id]
    return result.outcome


# What a certificate-less delivery accepted masks: each of these needs a target of its own.
MASKED = {
    "auth.method-bypass",
    "auth.untrusted-cert",
    "auth.forged-subject",
    "auth.expired-cert",
    "auth.spoofed-identity-header",
    "authz.foreign-identity",
    "authz.identity-confusion",
}
# Checks the naive target shows; the others have targets of their own below.
NAIVE_FLAWS = sorted(set(CHECKS) - MASKED - {"rate.no-retry-after", "tls.plaintext-http"})


@pytest.mark.parametrize("check_id", NAIVE_FLAWS)
def test_the_naive_deployment_has_the_flaw(naive_report: Report, check_id: str) -> None:
    assert outcome(naive_report, check_id) is Outcome.FAILED


@pytest.mark.parametrize("check_id", sorted(MASKED))
def test_what_the_naive_deployment_masks_is_not_claimed(
    naive_report: Report, check_id: str
) -> None:
    """Accepted without any certificate: no certificate or header can be shown to be the cause,
    so these checks say so (not applicable, masked) instead of one finding per probe."""
    (result,) = [r for r in naive_report.results if r.id == check_id]
    assert result.outcome is Outcome.NOT_APPLICABLE, result
    assert result.reason.startswith("masked")


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_the_hardened_deployment_has_none(hardened_report: Report, check_id: str) -> None:
    expected = {Outcome.PASSED}
    if CHECKS[check_id].severity is Severity.INFO:
        expected.add(Outcome.FAILED)  # info findings are allowed (TLS completes, then 401)
    assert outcome(hardened_report, check_id) in expected, [
        r for r in hardened_report.results if r.id == check_id
    ]


def test_the_hardened_deployment_grades_a(hardened_report: Report) -> None:
    assert [f.id for f in hardened_report.findings if f.severity is not Severity.INFO] == []
    assert hardened_report.grade == "A"
    assert hardened_report.requests_sent <= 400


def test_the_naive_deployment_grades_f(naive_report: Report) -> None:
    assert naive_report.grade == "F"
    assert naive_report.score <= 59


def test_the_budget_is_never_exceeded(targets: Targets) -> None:
    import asyncio

    report = asyncio.run(run_scan(config(targets, targets.naive, budget=40)))
    assert report.requests_sent <= 40
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    assert any("budget" in r.reason for r in skipped)


async def test_a_burst_cut_short_by_the_budget_proves_nothing(targets: Targets) -> None:
    # The naive endpoint has no limit, but 10 requests are too few to say so, or to clear it.
    report = await scan(targets, targets.naive, budget=10, checks=("rate.no-limit",))
    (result,) = [r for r in report.results if r.id == "rate.no-limit"]
    assert result.outcome is Outcome.SKIPPED
    assert "budget" in result.reason


async def test_any_certificate_through_a_permissive_proxy(targets: Targets) -> None:
    """The view wants a certificate, any: each certificate flaw is found, with its control (the
    same delivery without a certificate, refused) in the evidence."""
    report = await scan(targets, targets.permissive, checks=tuple(sorted(MASKED)))
    for check_id in (
        "auth.untrusted-cert",
        "auth.forged-subject",
        "auth.expired-cert",
        "auth.method-bypass",
    ):
        assert outcome(report, check_id) is Outcome.FAILED, check_id
        finding = next(f for f in report.findings if f.id == check_id)
        assert finding.evidence.control is not None
        assert finding.evidence.control.status == 401, check_id
    assert outcome(report, "authz.foreign-identity") is Outcome.FAILED
    # Any valid identity gets in: resemblance cannot be what lets a look-alike in.
    assert outcome(report, "authz.identity-confusion") is Outcome.NOT_APPLICABLE


async def test_glue_that_splits_the_forwarded_dn_on_commas(targets: Targets) -> None:
    report = await scan(
        targets,
        targets.split_dn,
        checks=(
            "authz.identity-confusion",
            "authz.foreign-identity",
            "auth.tls-client-auth-optional",
        ),
    )
    assert outcome(report, "authz.foreign-identity") is Outcome.PASSED
    found = {
        f.evidence.request.split("look-alike: ")[1].split(")")[0]
        for f in report.findings
        if f.id == "authz.identity-confusion"
    }
    # An escaped comma inside another attribute, and the CN of an X509-SVID under another ID.
    assert {"dn-escaped-comma", "dn-second-cn", "cn-other-spiffe"} <= found, found
    assert "dn-escaped-plus" not in found  # nothing splits on "+" here
    # nginx answers 400 itself to a certificate-less request: client auth is required.
    assert outcome(report, "auth.tls-client-auth-optional") is Outcome.PASSED


async def test_a_header_set_in_one_location_only_behind_nginx_verify_on(targets: Targets) -> None:
    """nginx refuses certificate-less requests with its own 400: the forged headers ride on a
    foreign valid certificate instead, and the location that does not set the header believes
    them. The control (the foreign certificate alone) was refused: 403, not that identity."""
    report = await scan(targets, targets.believer, checks=("auth.spoofed-identity-header",))
    assert outcome(report, "auth.spoofed-identity-header") is Outcome.FAILED
    findings = [f for f in report.findings if f.id == "auth.spoofed-identity-header"]
    assert all("another valid identity" in f.evidence.request for f in findings)
    assert any("forged nginx headers" in f.evidence.request for f in findings)
    assert {f.evidence.control.status for f in findings if f.evidence.control} == {403}
    # The location that sets the header is not fooled.
    report = await scan(targets, targets.split_dn, checks=("auth.spoofed-identity-header",))
    assert outcome(report, "auth.spoofed-identity-header") is Outcome.PASSED


async def test_a_legacy_trust_fallback_is_a_spoofing_path(targets: Targets) -> None:
    report = await scan(
        targets, targets.fallback, checks=("auth.spoofed-identity-header", "auth.no-client-cert")
    )
    assert outcome(report, "auth.no-client-cert") is Outcome.PASSED
    assert outcome(report, "auth.spoofed-identity-header") is Outcome.FAILED
    (finding,) = [f for f in report.findings if f.id == "auth.spoofed-identity-header"]
    assert "gcp" in finding.evidence.request


async def test_header_spoofing_is_not_blamed_on_a_foreign_certificate_let_in_anyway(
    targets: Targets,
) -> None:
    # The handshake demands a certificate and the naive app lets any valid one in: a foreign
    # certificate carrying forged headers is accepted whatever the headers say.
    report = await scan(
        targets,
        targets.any_valid,
        checks=("auth.spoofed-identity-header", "authz.foreign-identity"),
    )
    assert outcome(report, "authz.foreign-identity") is Outcome.FAILED
    assert outcome(report, "auth.spoofed-identity-header") is Outcome.NOT_APPLICABLE


async def test_a_receiver_that_needs_a_github_signature(targets: Targets) -> None:
    from hookshield.scanner.signers import Scheme

    github = targets.bare_limit.replace("/bare-limit/", "/github/")
    replay = ("replay.unsigned-accepted", "replay.duplicate-accepted", "replay.stale-timestamp")
    report = await scan(
        targets,
        github,
        checks=replay,
        signing_secret=GITHUB_SECRET,
        signature_scheme=Scheme.GITHUB,
        headers=(("X-GitHub-Event", "push"),),
    )
    assert outcome(report, "replay.unsigned-accepted") is Outcome.PASSED
    assert outcome(report, "replay.duplicate-accepted") is Outcome.FAILED
    assert outcome(report, "replay.stale-timestamp") is Outcome.NOT_APPLICABLE
    # Signed the Standard Webhooks way, it refuses the baseline: the scan says it tested nothing.
    report = await scan(targets, github, checks=replay)
    assert report.grade == "incomplete"


async def test_a_429_without_retry_after(targets: Targets) -> None:
    report = await scan(
        targets, targets.bare_limit, burst=20, checks=("rate.no-limit", "rate.no-retry-after")
    )
    assert outcome(report, "rate.no-limit") is Outcome.PASSED
    assert outcome(report, "rate.no-retry-after") is Outcome.FAILED


async def test_plain_http(targets: Targets) -> None:
    report = await scan(targets, targets.plain_http)
    assert outcome(report, "tls.plaintext-http") is Outcome.FAILED
    # No certificate can be presented over plain HTTP: none is reported as accepted.
    for check_id in sorted(MASKED - {"auth.spoofed-identity-header", "auth.method-bypass"}):
        (result,) = [r for r in report.results if r.id == check_id]
        assert result.outcome is Outcome.NOT_APPLICABLE, result
        assert "https://" in result.reason


async def test_a_handshake_that_requires_a_client_certificate(targets: Targets) -> None:
    report = await scan(
        targets, targets.strict_handshake, checks=("auth.tls-client-auth-optional",)
    )
    assert outcome(report, "auth.tls-client-auth-optional") is Outcome.PASSED


async def test_inputs_missing_mean_skipped_with_the_reason(targets: Targets) -> None:
    report = await scan(targets, targets.hardened, mint_ca=None, signing_secret=None, legit=None)
    reasons = {r.id: r.reason for r in report.results if r.outcome is Outcome.SKIPPED}
    assert "--mint-ca" in reasons["auth.expired-cert"]
    assert "--signing-secret" in reasons["replay.stale-timestamp"]
    assert "--cert" in reasons["auth.forged-subject"]
    # Without the legitimate certificate the baseline is refused: comparisons are inconclusive.
    inconclusive = {r.id for r in report.results if r.outcome is Outcome.INCONCLUSIVE}
    assert "auth.no-client-cert" in inconclusive
    # An endpoint the scan could not test is never graded, whatever its score.
    assert report.grade == "incomplete"
    assert report.incomplete is not None
    assert report.incomplete.startswith("the baseline delivery was refused (401)")


def test_an_untested_endpoint_never_passes_a_ci_gate(targets: Targets, tmp_path: Path) -> None:
    """The baseline is refused (no client certificate): no gate may pass, exit 4."""
    from hookshield.cli import main

    out = tmp_path / "report.json"
    code = main(
        [
            "scan",
            targets.hardened,
            "--ca",
            targets.ca,
            "--threshold",
            "90",
            "--fail-on",
            "high",
            "--format",
            "json",
            "--output",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert code == 4, report
    assert report["grade"] == "incomplete"
    assert report["coverage"]["checks_run"] < report["coverage"]["checks_applicable"]


def test_the_cli_end_to_end(targets: Targets, tmp_path: Path, redis_url: str) -> None:
    from hookshield.cli import main

    out = tmp_path / "report.json"
    files = targets.files

    def scan_json(url: str, *options: str) -> int:
        legit = files["legit"]
        common = ["--cert", str(legit.cert), "--key", str(legit.key), "--ca", targets.ca]
        common += ["--signing-secret", SECRET, "--format", "json", "--output", str(out)]
        return main(["scan", url, *common, *options])

    mint = files["mint"]
    code = scan_json(
        targets.naive, "--mint-ca", str(mint.cert), "--mint-key", str(mint.key), "--threshold", "60"
    )
    assert code == 1  # below the threshold
    report = json.loads(out.read_text())
    assert report["grade"] == "F"
    forget_counts(redis_url, "strict")  # the scans above used the identity's quota
    checks = "auth.no-client-cert,authz.identity-confusion,input.malformed-json-5xx"
    # identity-confusion needs --mint-ca: 2 of 3 checks ran, so no gate may pass on it.
    code = scan_json(targets.hardened, "--fail-on", "low", "--checks", checks)
    assert code == 4
    report = json.loads(out.read_text())
    assert report["grade"] == "incomplete"
    assert report["coverage"] == {"checks_run": 2, "checks_applicable": 3}
    assert "below --min-coverage 1" in report["incomplete"]
    code = scan_json(
        targets.hardened, "--fail-on", "low", "--checks", checks, "--min-coverage", "0.6"
    )
    assert code == 0
    assert json.loads(out.read_text())["grade"] == "A"


async def test_max_duration_skips_what_it_does_not_reach(targets: Targets) -> None:
    report = await scan(targets, targets.naive, max_duration=0.0)
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    assert skipped
    assert all("--max-duration" in r.reason for r in skipped)
    assert report.requests_sent == 1  # the baseline only


def test_the_report_records_the_burst(hardened_report: Report) -> None:
    assert hardened_report.burst is not None
    sent, seconds = hardened_report.burst
    assert 0 < sent <= 120
    assert seconds > 0


def test_several_targets_concurrently(targets: Targets, tmp_path: Path) -> None:
    from hookshield.cli import main

    files = targets.files
    listing = tmp_path / "targets.yaml"
    # The fallback target, not the hardened one: the module's full scan spent its rate.
    listing.write_text(f"- url: {targets.naive}\n- url: {targets.fallback}\n")
    out = tmp_path / "report.json"
    code = main(
        [
            "scan",
            "--targets",
            str(listing),
            "--cert",
            str(files["legit"].cert),
            "--key",
            str(files["legit"].key),
            "--ca",
            targets.ca,
            "--format",
            "json",
            "--output",
            str(out),
            "--fail-on",
            "high",
            "--checks",
            "auth.no-client-cert,authz.foreign-identity",
        ]
    )
    assert code == 1  # the naive target's critical finding decides
    data = json.loads(out.read_text())
    assert [r["target"] for r in data["reports"]] == [targets.naive, targets.fallback]
    assert data["summary"]["worst_target"] == targets.naive
    fallback = data["reports"][1]
    assert fallback["findings"] == []
    assert {s["id"] for s in fallback["skipped"]} == {"authz.foreign-identity"}


@pytest.mark.parametrize("fmt", ["pretty", "json", "sarif", "junit", "html"])
def test_credentials_in_the_url_are_sent_and_never_shown(
    targets: Targets, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Basic auth in the URL (how some receivers are configured): used, and masked as ***."""
    from hookshield.cli import main

    password = "s3cret-pa55word"
    url = targets.naive.replace("https://", f"https://hooks:{password}@", 1)
    out = tmp_path / f"report.{fmt}"
    legit = targets.files["legit"]
    code = main(
        [
            "scan",
            url,
            "--cert",
            str(legit.cert),
            "--key",
            str(legit.key),
            "--ca",
            targets.ca,
            "--checks",
            "auth.no-client-cert,exposure.payload-echo",
            "--format",
            fmt,
            "--output",
            str(out),
        ]
    )
    assert code in (0, 1)
    printed = capsys.readouterr()
    text = out.read_text() + printed.out + printed.err
    assert password not in text
    assert "https://***@127.0.0.1" in out.read_text()
