"""Receivers with their own authentication: signing schemes, --header, secrets kept out of every
report, --rate pacing and the burst's announcement (no network: httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from hookshield.cli import main
from hookshield.core.signatures import sign_v1
from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.context import ScanContext
from hookshield.scanner.formats import OutputFormat
from hookshield.scanner.formats.many import render_many
from hookshield.scanner.model import Outcome, Report
from hookshield.scanner.profiles import Profiles
from hookshield.scanner.signers import Scheme, Signer

URL = "https://hooks.example.test/hooks/"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def outcome(report: Report, check_id: str) -> Outcome:
    (result,) = [r for r in report.results if r.id == check_id]
    return result.outcome


# -- the schemes, on published vectors (docs: ../docs/webhook-signatures.md) -------------------


def test_github_vector() -> None:
    headers = Signer(Scheme.GITHUB, "It's a Secret to Everybody").headers(b"Hello, World!")
    assert headers["X-Hub-Signature-256"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    assert headers["X-GitHub-Delivery"]


def test_slack_published_vector() -> None:
    # Slack's documented request (python-slack-sdk's test): the whole form body.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
        b"-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
        b"00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d1"
        b"0d2c447fce8b6703c"
    )
    headers = Signer(Scheme.SLACK, "8f742231b10e8888abcd99yyyzzz85a5").headers(
        body, timestamp=1531420618
    )
    assert headers["X-Slack-Signature"] == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_stripe_signs_timestamp_dot_body_with_the_whole_secret() -> None:
    headers = Signer(Scheme.STRIPE, "whsec_test").headers(b'{"id": 1}', timestamp=1700000000)
    mac = hmac.new(b"whsec_test", b'1700000000.{"id": 1}', hashlib.sha256).hexdigest()
    assert headers == {"Stripe-Signature": f"t=1700000000,v1={mac}"}


def test_standard_webhooks_and_generic_hmac() -> None:
    headers = Signer(Scheme.STANDARD, SECRET).headers(b"{}", delivery_id="msg_1", timestamp=5)
    assert headers["webhook-signature"] == sign_v1(SECRET, "msg_1", 5, b"{}")
    generic = Signer(Scheme.HMAC, "s3cret-value", "X-Mail-Signature").headers(b"body")
    assert generic == {
        "X-Mail-Signature": hmac.new(b"s3cret-value", b"body", hashlib.sha256).hexdigest()
    }


def test_a_standard_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        Signer(Scheme.STANDARD, "whsec_!!!")
    assert Signer(Scheme.GITHUB, "not base64 at all").timestamped is False


# -- a receiver with a GitHub signature ---------------------------------------------------------


class GitHubReceiver:
    """Verifies X-Hub-Signature-256 and wants X-GitHub-Event; keeps no delivery ids (unless
    ``dedupe``), so the same delivery is accepted again."""

    def __init__(self, secret: str, *, dedupe: bool = False) -> None:
        self.secret = secret.encode()
        self.dedupe = dedupe
        self.seen: set[str] = set()
        self.log: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append("request")
        body = request.read()
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        given = request.headers.get("x-hub-signature-256", "")
        if not hmac.compare_digest(given, expected) or "x-github-event" not in request.headers:
            return httpx.Response(401, json={"error": "bad signature"})
        delivery = request.headers.get("x-github-delivery", "")
        if self.dedupe and delivery in self.seen:
            return httpx.Response(409, json={"error": "seen"})
        self.seen.add(delivery)
        return httpx.Response(200, json={"ok": True})


def scan(receiver: Callable[[httpx.Request], httpx.Response], **config: Any) -> Report:
    config.setdefault("url", URL)
    return asyncio.run(run_scan(ScanConfig(**config), transport=httpx.MockTransport(receiver)))


REPLAY = ("replay.unsigned-accepted", "replay.duplicate-accepted", "replay.stale-timestamp")


def test_a_github_signed_receiver_is_scanned_and_its_replays_found() -> None:
    report = scan(
        GitHubReceiver("gh-secret-123"),
        signing_secret="gh-secret-123",
        signature_scheme=Scheme.GITHUB,
        headers=(("X-GitHub-Event", "push"),),
        checks=REPLAY,
    )
    assert report.incomplete is None
    assert outcome(report, "replay.unsigned-accepted") is Outcome.PASSED
    assert outcome(report, "replay.duplicate-accepted") is Outcome.FAILED
    # GitHub signs no timestamp: nothing stale to re-sign.
    assert outcome(report, "replay.stale-timestamp") is Outcome.NOT_APPLICABLE


def test_a_github_receiver_that_dedupes_passes_replay() -> None:
    report = scan(
        GitHubReceiver("gh-secret-123", dedupe=True),
        signing_secret="gh-secret-123",
        signature_scheme=Scheme.GITHUB,
        headers=(("X-GitHub-Event", "push"),),
        checks=REPLAY,
    )
    assert outcome(report, "replay.duplicate-accepted") is Outcome.PASSED


def test_without_the_receivers_signature_the_scan_is_incomplete() -> None:
    report = scan(GitHubReceiver("gh-secret-123"), checks=REPLAY)
    assert report.grade == "incomplete"


def test_headers_alone_replay_the_baseline_unchanged() -> None:
    """A captured signed delivery given with --header and no secret: every request carries it,
    so the duplicate check re-sends the accepted baseline."""
    captured = GitHubReceiver("gh-secret-123")
    body = b'{"zen": "hi"}'
    signature = "sha256=" + hmac.new(b"gh-secret-123", body, hashlib.sha256).hexdigest()
    report = scan(
        captured,
        payload=body,
        headers=(("X-GitHub-Event", "push"), ("X-Hub-Signature-256", signature)),
        checks=REPLAY,
    )
    assert outcome(report, "replay.duplicate-accepted") is Outcome.FAILED
    assert outcome(report, "replay.unsigned-accepted") is Outcome.SKIPPED


def test_a_captured_delivery_signed_in_its_body_is_replayed() -> None:
    """Mailgun signs inside the JSON body: --payload alone carries the signature."""
    token = "f3c8a1e2" * 4
    mac = hmac.new(b"mg-key", b"1700000000" + token.encode(), hashlib.sha256).hexdigest()
    body = json.dumps({"signature": {"timestamp": "1700000000", "token": token, "signature": mac}})

    def mailgun(request: httpx.Request) -> httpx.Response:
        signed = json.loads(request.read()).get("signature", {})
        given = f"{signed.get('timestamp')}{signed.get('token')}".encode()
        expected = hmac.new(b"mg-key", given, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(str(signed.get("signature")), expected)
        return httpx.Response(200 if ok else 401, json={})

    report = scan(mailgun, payload=body.encode(), checks=REPLAY)
    assert outcome(report, "replay.duplicate-accepted") is Outcome.FAILED

    # No secret and nothing given to re-send: skipped, saying what it needs.
    report = scan(lambda request: httpx.Response(200), checks=("replay.duplicate-accepted",))
    (result,) = report.results
    assert result.outcome is Outcome.SKIPPED
    assert "--payload" in result.reason


def test_stripe_and_slack_stale_timestamps_are_tried() -> None:
    def accepts_anything_signed(request: httpx.Request) -> httpx.Response:
        signed = "stripe-signature" in request.headers or "x-slack-signature" in request.headers
        return httpx.Response(200 if signed else 401, json={})

    for scheme in (Scheme.STRIPE, Scheme.SLACK):
        report = scan(
            accepts_anything_signed,
            signing_secret="plain-secret",
            signature_scheme=scheme,
            checks=REPLAY,
        )
        assert outcome(report, "replay.stale-timestamp") is Outcome.FAILED, scheme


# -- no secret in any report --------------------------------------------------------------------


def echo_everything(request: httpx.Request) -> httpx.Response:
    """A debug page that lists every header and the URL: the worst case for secrets."""
    page = json.dumps({"url": str(request.url), "headers": dict(request.headers)})
    status = 500 if request.headers.get("content-type") == "text/plain" else 200
    return httpx.Response(status, text=page, headers={"content-type": "text/html"})


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_no_secret_given_on_the_command_line_appears_in_any_format(fmt: OutputFormat) -> None:
    basic = base64.b64encode(b"mailgun:pa55word-here").decode()
    report = scan(
        echo_everything,
        url="https://api:url-password-1@hooks.example.test/hooks/",
        signing_secret=SECRET,
        headers=(("Authorization", f"Basic {basic}"), ("X-Api-Key", "key-0123456789")),
    )
    text = render_many([report], fmt, color=False, sarif_location="scan.txt")
    assert report.findings  # the echo was seen and reported
    for secret in (SECRET, basic, "key-0123456789", "url-password-1"):
        assert secret not in text, (fmt, secret)
    assert "***" in text


def echo_escaped(request: httpx.Request) -> httpx.Response:
    """A page that shows the API key escaped as HTML, percent-encoded and in JSON, then the
    delivery's body (so that exposure.payload-echo reports the page)."""
    key = request.headers.get("x-api-key", "")
    page = f"<td>{html.escape(key)}</td><a href='?k={quote(key, safe='')}'>{json.dumps(key)}</a>"
    page += request.content.decode()
    return httpx.Response(200, text=page, headers={"content-type": "text/html"})


def test_a_secret_echoed_escaped_or_encoded_is_masked_too() -> None:
    token = 'k9&Zr"T<7q!Lw/+= \\x'  # every character that HTML, URLs or JSON would change
    report = scan(echo_escaped, headers=(("X-Api-Key", token),), checks=("exposure.payload-echo",))
    text = render_many([report], OutputFormat.JSON, color=False, sarif_location="scan.txt")
    assert report.findings  # the echo was seen and reported
    for form in (token, html.escape(token), quote(token, safe=""), json.dumps(token)[1:-1]):
        assert form not in text, form
        assert form not in json.loads(text)["findings"][0]["evidence"]["excerpt"]


def test_a_malformed_header_is_a_usage_error_that_does_not_echo_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["scan", URL, "--header", "no-colon-secret-value"])
    assert exited.value.code == 2
    assert "no-colon-secret-value" not in capsys.readouterr().err


def test_a_bad_secret_for_the_scheme_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["scan", URL, "--signing-secret", "whsec_!!!"]) == 2
    err = capsys.readouterr().err
    assert "whsec_!!!" not in err
    assert "value not shown" in err


# -- pacing and the burst's announcement ----------------------------------------------------------


def test_rate_spaces_request_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """--rate 4/s: the n-th request starts n/4 s after the first, however many are in flight."""
    clock = [100.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))

    monkeypatch.setattr("hookshield.scanner.context.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("hookshield.scanner.context.asyncio.sleep", fake_sleep)
    profiles = Profiles(legit=None, foreign=None, mint_ca=None)
    ctx = ScanContext(ScanConfig(url=URL, rate=4.0), profiles)

    async def spend_five() -> None:
        await asyncio.gather(*(ctx._spend() for _ in range(5)))

    try:
        asyncio.run(spend_five())
    finally:
        profiles.close()
    assert sorted(waits) == [0.25, 0.5, 0.75, 1.0]  # the first starts at once
    assert ctx.sent == 5


def test_the_burst_is_announced_before_it_starts() -> None:
    events: list[str] = []

    class Observer:
        def scan_started(self, target: str, checks: int) -> None:
            pass

        def check_done(self, result: object) -> None:
            pass

        def notice(self, message: str) -> None:
            events.append(f"notice: {message}")

    def receiver(request: httpx.Request) -> httpx.Response:
        events.append("request")
        return httpx.Response(200, json={})

    asyncio.run(
        run_scan(
            ScanConfig(url=URL, burst=5, checks=("rate.no-limit",)),
            Observer(),
            transport=httpx.MockTransport(receiver),
        )
    )
    # The baseline (no probe came before the burst: it is not sent again).
    assert events[0] == "request"
    assert events[1].startswith("notice: rate-limit burst: up to 5 deliveries")
    assert "quota" in events[1]
    assert events[2:] == ["request"] * 5


def test_skip_removes_checks_and_cannot_remove_all(capsys: pytest.CaptureFixture[str]) -> None:
    from hookshield.cli.scan import _check_ids

    kept = _check_ids(None, "rate.no-limit,rate.no-retry-after")
    assert "rate.no-limit" not in kept
    assert "auth.no-client-cert" in kept
    assert _check_ids("rate.no-limit,auth.no-client-cert", "rate.no-limit") == (
        "auth.no-client-cert",
    )
    assert main(["scan", URL, "--checks", "rate.no-limit", "--skip", "rate.no-limit"]) == 2
    assert "no check to run" in capsys.readouterr().err


def test_a_secret_at_the_excerpts_cut_leaves_no_part_behind() -> None:
    secret = "apikey-0123456789abcdef"

    def echo_late(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="x" * 290 + request.headers["x-api-key"])

    report = scan(echo_late, headers=(("X-Api-Key", secret),), checks=("exposure.debug-page",))
    text = render_many([report], OutputFormat.JSON, color=False, sarif_location="scan.txt")
    assert secret[:6] not in text


@pytest.mark.parametrize(
    ("url", "hidden"),
    [
        # httpx sends URL credentials as Authorization: Basic base64(user:password).
        ("https://api:pa55-word-1@hooks.example.test/h/", base64.b64encode(b"api:pa55-word-1")),
        ("https://tok3n-bare-user@hooks.example.test/h/", b"tok3n-bare-user"),
        ("https://user:longp@ssword-1@hooks.example.test/h/", b"ssword-1"),
    ],
)
def test_url_credentials_in_every_form_stay_hidden(url: str, hidden: bytes) -> None:
    report = scan(echo_everything, url=url, checks=("exposure.debug-page", "auth.no-client-cert"))
    for fmt in OutputFormat:
        text = render_many([report], fmt, color=False, sarif_location="scan.txt")
        assert hidden.decode() not in text, fmt


def test_a_header_never_replaces_what_a_probe_changes() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(",".join(v for k, v in request.headers.multi_items() if k == "content-type"))
        return httpx.Response(200, json={})

    scan(
        record,
        headers=(("content-type", "application/x-www-form-urlencoded"),),
        checks=("input.wrong-content-type",),
    )
    assert seen[0] == "application/x-www-form-urlencoded"  # the baseline: as given
    assert "text/plain" in seen[1:]  # the probe's own type, sent once, not beside the user's
    assert all("," not in value for value in seen)


def test_a_paced_burst_proves_no_absence_of_a_limit() -> None:
    report = scan(
        lambda request: httpx.Response(200), rate=1000.0, burst=5, checks=("rate.no-limit",)
    )
    (result,) = report.results
    assert result.outcome is Outcome.INCONCLUSIVE
    assert "--rate" in result.reason


def test_a_scan_where_nothing_applies_is_incomplete() -> None:
    report = scan(
        lambda request: httpx.Response(200),
        url="http://hooks.example.test/h/",
        checks=("tls.legacy-protocol",),
    )
    assert report.checks_applicable == 0
    assert report.grade == "incomplete"
