from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from hookshield.cli import ExitCode, main
from hookshield.core.signatures import new_ed25519_keys, new_hmac_secret
from hookshield.scanner.context import NoAnswer, _handshake
from hookshield.scanner.registry import CHECKS
from tests.conftest import TestPki

DEAD = "https://127.0.0.1:1/hooks/"  # nothing listens on port 1


def test_help_lists_every_contract_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--ca",
        "--cert",
        "--key",
        "--foreign-cert",
        "--foreign-key",
        "--mint-ca",
        "--mint-key",
        "--signing-secret",
        "--payload",
        "--budget",
        "--burst",
        "--timeout",
        "--concurrency",
        "--max-duration",
        "--format",
        "--output",
        "--threshold",
        "--fail-on",
        "--targets",
        "--sarif-location",
        "--list-checks",
    ):
        assert flag in text
    assert "exit codes" in text


def test_list_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--list-checks"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == set(CHECKS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scan"], "give a URL or --targets"),
        (["scan", "ftp://x/"], "not an http(s) URL"),
        (["scan", DEAD, "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"], "cannot read"),
        (["scan", DEAD, "--cert", __file__], "give both the certificate and the key"),
        (["scan", DEAD, "--checks", "auth.nope"], "unknown check ids: auth.nope"),
        (["scan", DEAD, "--ca", "/nonexistent-ca.pem"], "--ca: cannot read"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cert", "{garbage}", "--key", "{key}"], "--cert/--key"),
        (["--cert", "{cert}", "--key", "{other_key}"], "--cert/--key"),  # not the cert's own key
        (["--mint-ca", "{cert}", "--mint-key", "{other_key}"], "--mint-ca/--mint-key"),
        (["--signing-secret", "whsec_not*base64"], "--signing-secret"),
        (["--payload", "{directory}"], "--payload"),
    ],
)
def test_unusable_credentials_and_inputs_exit_2(
    flags: list[str],
    message: str,
    pki: TestPki,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    cert, key = pki.files("allowed")
    files = {
        "garbage": garbage,
        "cert": cert,
        "key": key,
        "other_key": pki.files("other")[1],
        "directory": tmp_path,
    }
    assert main(["scan", DEAD, *(flag.format(**files) for flag in flags)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "not*base64" not in err  # a secret is never echoed


@pytest.mark.parametrize(
    "flags",
    [
        ["--format", "xml"],
        ["--concurrency", "0"],  # would wait forever for a free slot
        ["--budget", "0"],
        ["--budget", "-5"],
        ["--burst", "0"],
        ["--timeout", "0"],
        ["--max-duration", "-1"],
        ["--timeout", "nan"],
    ],
)
def test_bad_flag_values_exit_2(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["scan", DEAD, *flags])
    assert exit_.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_targets_entries_are_checked_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "- url: https://127.0.0.1:1/\n  signing_secret: 12345678\n": "signing_secret must be",
        "- url: https://127.0.0.1:1/\n  signing-secret: whsec_x\n": "unknown keys ['signing-",
        "- url: https://127.0.0.1:1/\n  cert: [a, b]\n": "cert must be a string",
        "- url: https://127.0.0.1:1/\n  signing_secret: whsec_x\n  signing_secret_file: f\n": (
            "give signing_secret or signing_secret_file"
        ),
    }
    for text, message in cases.items():
        listed = tmp_path / "targets.yaml"
        listed.write_text(text)
        assert main(["scan", "--targets", str(listed)]) == ExitCode.USAGE
        err = capsys.readouterr().err
        assert message in err
        assert "12345678" not in err  # a value is never shown


def test_an_output_that_cannot_be_written_is_refused_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for output in (tmp_path / "missing" / "report.json", tmp_path):
        assert main(["scan", DEAD, "--output", str(output)]) == ExitCode.USAGE
        err = capsys.readouterr().err
        assert "--output: cannot write" in err
        assert "unreachable" not in err  # refused before any request


def test_an_unreachable_target_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", DEAD, "--timeout", "2"]) == 3
    assert "unreachable" in capsys.readouterr().err
    # An earlier run's report must not pass for this one's (CI uploads it whatever the exit).
    earlier = tmp_path / "hookshield.sarif"
    earlier.write_text("{}")
    assert main(["scan", DEAD, "--timeout", "2", "--output", str(earlier)]) == 3
    assert not earlier.exists()
    assert "removed the earlier" in capsys.readouterr().err


def test_targets_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "targets.txt"
    lines.write_text(f"# webhooks\n{DEAD}\n\n{DEAD.replace('/hooks/', '/other/')}\n")
    assert main(["scan", "--targets", str(lines), "--timeout", "2"]) == 3
    listed = tmp_path / "targets.yaml"
    listed.write_text(f"- url: {DEAD}\n  cert: missing.pem\n  key: missing.key\n")
    assert main(["scan", "--targets", str(listed)]) == 2
    assert "missing.pem" in capsys.readouterr().err
    broken = tmp_path / "targets.json"
    broken.write_text("{not json")
    assert main(["scan", "--targets", str(broken)]) == 2
    empty = tmp_path / "empty.yaml"
    empty.write_text("[]")
    assert main(["scan", "--targets", str(empty)]) == 2


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (new_hmac_secret(), ExitCode.UNREACHABLE),  # accepted: the scan ran, nothing listens
        (new_ed25519_keys()[0], ExitCode.UNREACHABLE),  # whsk_: deliveries signed v1a
        (new_ed25519_keys()[1], ExitCode.USAGE),  # whpk_: verifies, cannot sign
    ],
)
def test_signing_keys_of_both_schemes(
    key: str, code: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", DEAD, "--signing-secret", key, "--format", "json"]) == code
    captured = capsys.readouterr()
    assert key[6:] not in captured.out + captured.err
    if code == ExitCode.USAGE:
        assert "--signing-secret: a whpk_ key is public" in captured.err


@contextmanager
def answers_once() -> Iterator[str]:
    """A plain-HTTP receiver that takes any delivery once (the baseline), then stops listening,
    as a target that went down mid-scan does."""

    class Once(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Once)

    def serve_once() -> None:
        server.handle_request()
        server.server_close()

    thread = threading.Thread(target=serve_once)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/"
    finally:
        thread.join(timeout=10)


def test_probes_that_get_no_answer_prove_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A naive receiver that went down after the baseline: every probe's connection is refused.
    # That is no refusal of what the probe tried: the checks are inconclusive, never passed,
    # and the scan is incomplete (exit 4), not graded A.
    report = tmp_path / "report.json"
    checks = "auth.no-client-cert,input.oversized-body,input.wrong-content-type"
    with answers_once() as url:
        code = main(["scan", url, "--checks", checks, "--format", "json", "--output", str(report)])
    assert code == ExitCode.INCOMPLETE
    document = json.loads(report.read_text())
    assert document["grade"] == "incomplete"
    inconclusive = {entry["id"]: entry["reason"] for entry in document["inconclusive"]}
    assert set(inconclusive) == set(checks.split(","))
    assert all("no answer" in reason for reason in inconclusive.values())
    assert document["findings"] == []


def test_a_handshake_nothing_answers_proves_nothing() -> None:
    # tls.* checks judge a failed handshake a refusal; with nothing listening it is not one.
    context = ssl.create_default_context()
    with pytest.raises(NoAnswer, match="no answer"):
        _handshake("127.0.0.1", 1, context, False, 2.0)


def test_the_signing_secret_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Kept out of the process list: the first line of the file, on the command line or per
    # --targets entry (relative to the targets file); the file's content is never shown.
    from hookshield.cli import build_parser
    from hookshield.cli.scan import _targets

    secret, other = new_hmac_secret(), new_hmac_secret()
    (tmp_path / "secret.txt").write_text(f"{secret}\n# the second line is not read\n")
    (tmp_path / "other.txt").write_text(f"{other}\n")
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"- url: {DEAD}\n  signing_secret_file: other.txt\n- url: {DEAD}\n")
    file_flag = ["--signing-secret-file", str(tmp_path / "secret.txt")]
    args = build_parser().parse_args(["scan", "--targets", str(targets), *file_flag])
    assert [config.signing_secret for config in _targets(args)] == [other, secret]
    args = build_parser().parse_args(["scan", DEAD, *file_flag])
    assert [config.signing_secret for config in _targets(args)] == [secret]

    (tmp_path / "empty.txt").write_text("\n")
    for name, message in (("missing.txt", "cannot read"), ("empty.txt", "no key on its first")):
        assert main(["scan", DEAD, "--signing-secret-file", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "--signing-secret-file: " in err
        assert message in err
    with pytest.raises(SystemExit):  # one or the other
        main(["scan", DEAD, "--signing-secret", secret, *file_flag])
    assert secret not in capsys.readouterr().err
