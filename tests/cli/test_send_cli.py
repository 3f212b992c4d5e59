"""``hookshield send`` without a server: usage errors say what is wrong, never show the key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from hookshield.cli import ExitCode, main
from hookshield.cli.send import _show
from hookshield.core.signatures import new_ed25519_keys, new_hmac_secret
from tests.conftest import TestPki

DEAD = "https://127.0.0.1:1/hooks/payments/"  # nothing listens on port 1
SECRET = new_hmac_secret()
PRIVATE, PUBLIC = new_ed25519_keys()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["send", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", PUBLIC], "--secret: a whpk_ key is public"),
        (["--secret", "whsec_not*base64"], "--secret: not a Standard Webhooks signing key"),
        (
            ["--secret", "whsk_" + new_hmac_secret(24)[6:]],  # 24 bytes: no Ed25519 seed
            "--secret: a whsk_ key is the base64 of a 32-byte Ed25519 seed",
        ),
        (["--secret", ""], "--secret is empty"),
        (["--header", "no colon"], "--header: expected 'Name: value'"),
        (["--header", "bad name: x"], "--header: expected 'Name: value'"),
        (["--file", "/nonexistent/body.json"], "--file: No such file or directory"),
        (["--secret-file", "/nonexistent/key.txt"], "--secret-file: cannot read"),
        (["--cert", "/nonexistent/c.pem"], "--cert and --key go together"),
        (["--cert", "/nonexistent/c.pem", "--key", "/nonexistent/c.key"], "--cert: no such file"),
        (["--ca", "/nonexistent/ca.pem"], "--ca /nonexistent/ca.pem: No such file"),
    ],
)
def test_usage_errors_are_one_line_and_hide_the_key(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, DEAD, *args)
    assert code == ExitCode.USAGE
    assert out == ""  # nothing was sent
    assert err.startswith(f"hookshield send: {message}"), err
    assert len(err.splitlines()) == 1
    for value in args:
        if value.startswith(("whsec_", "whsk_", "whpk_")):
            assert value.split("_", 1)[1] not in err


def test_a_url_that_is_not_http(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ftp://user:pw@example.test/")
    assert code == ExitCode.USAGE
    assert "not an http(s) URL: 'ftp://***@example.test/'" in err


def test_a_secret_file_with_nothing_on_its_first_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n" + SECRET + "\n")
    code, _, err = run(capsys, DEAD, "--secret-file", str(empty))
    assert code == ExitCode.USAGE
    assert "has no key on its first line" in err
    assert SECRET[6:] not in err


def test_a_key_that_does_not_match_the_certificate(
    capsys: pytest.CaptureFixture[str], pki: TestPki
) -> None:
    cert, _ = pki.files("allowed")
    _, other_key = pki.files("other")
    code, _, err = run(capsys, DEAD, "--cert", str(cert), "--key", str(other_key))
    assert code == ExitCode.USAGE
    assert err.startswith(f"hookshield send: --cert {cert} / --key {other_key}: ")


def test_nobody_listening_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, DEAD, "--secret", SECRET, "--replay")
    assert code == ExitCode.UNREACHABLE
    assert out.startswith(f"POST {DEAD} without a client certificate, signed (v1), webhook-id msg_")
    assert SECRET[6:] not in out + err
    assert err == f"hookshield send: cannot connect to {DEAD}: Connection refused\n"


def test_credentials_in_the_url_are_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "https://user:hunter2@127.0.0.1:1/hooks/")
    assert code == ExitCode.UNREACHABLE
    assert "hunter2" not in out + err
    assert "https://***@127.0.0.1:1/hooks/" in out


def test_help_names_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--cert",
        "--key",
        "--ca",
        "--secret",
        "--secret-file",
        "--data",
        "--file",
        "--header",
        "--replay",
        "--timeout",
    ):
        assert flag in text
    assert "exit codes: 0 accepted" in text


def test_an_answer_cannot_steer_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    hostile = "\x1b]0;owned\x07\x1b[2Jfine\rover\u009b31m" + "x" * 5000
    _show(httpx.Response(500, content=hostile.encode()))
    out = capsys.readouterr().out
    assert out.startswith(
        "-> 500 Internal Server Error\n\\x1b]0;owned\\x07\\x1b[2Jfine\\x0dover\\x9b31mxxx"
    )
    assert not any(ord(c) < 32 and c != "\n" for c in out)
    assert out.endswith(f"... ({len(hostile) - 4096} more characters)\n")


def test_a_json_answer_is_pretty_printed(capsys: pytest.CaptureFixture[str]) -> None:
    _show(
        httpx.Response(429, json={"error": {"code": "rate_limited"}}, headers={"Retry-After": "7"})
    )
    assert capsys.readouterr().out == (
        "-> 429 Too Many Requests\n"
        "   Retry-After: 7\n"
        '{\n  "error": {\n    "code": "rate_limited"\n  }\n}\n'
    )
