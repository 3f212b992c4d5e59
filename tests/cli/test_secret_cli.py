"""``hookshield secret``: keys in the formats the guard reads, said where they go, never reused."""

from __future__ import annotations

import base64
import datetime as dt
import stat
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from hookshield.cli import ExitCode, main
from hookshield.core.signatures import SignatureVerifier, sign_v1, signed_headers

SETTING = 'HOOKSHIELD["ENDPOINTS"]["payments"]["SIGNING_SECRETS"]'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["secret", *args])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def as_meta(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def test_one_whsec_line_that_signs_what_the_guard_verifies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines, err = run(capsys, "--endpoint", "payments")
    assert code == ExitCode.OK
    [secret] = lines  # stdout is the secret alone: SECRET=$(hookshield secret) works
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert SETTING in err
    assert secret not in err
    body = b'{"type": "payment.succeeded"}'
    now = 1_700_000_000
    headers = signed_headers(secret, body, timestamp=now)
    verifier = SignatureVerifier([secret], clock=lambda: now)
    assert verifier.verify(as_meta(headers), body) == headers["webhook-id"]


def test_the_official_package_accepts_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    _, [secret], _ = run(capsys)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = int(when.timestamp())
    body = '{"type": "x"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_v1(secret, "msg_1", stamp, body.encode()),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "x"}


def test_every_run_is_a_new_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys)[1] != run(capsys)[1]


@pytest.mark.parametrize(("size", "code"), [("24", 0), ("64", 0), ("23", 2), ("65", 2)])
def test_the_size_is_the_spec_s(capsys: pytest.CaptureFixture[str], size: str, code: int) -> None:
    result, lines, err = run(capsys, "--bytes", size)
    assert result == code
    if code == 0:
        assert len(base64.b64decode(lines[0].removeprefix("whsec_"))) == int(size)
    else:
        assert lines == []
        assert "--bytes: from 24 to 64" in err


def test_an_ed25519_pair_labelled_for_the_sender_and_the_guard(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines, err = run(capsys, "--ed25519", "--endpoint", "payments")
    assert code == ExitCode.OK
    private, public = lines
    assert private.startswith("whsk_")
    assert public.startswith("whpk_")
    assert "private key, for the sender" in err
    assert f"public key, for the guard: add it to {SETTING}" in err
    body = b"{}"
    headers = signed_headers(private, body, timestamp=1_700_000_000)
    assert headers["webhook-signature"].startswith("v1a,")
    verifier = SignatureVerifier([public], clock=lambda: 1_700_000_000)
    assert verifier.verify(as_meta(headers), body) == headers["webhook-id"]
    # The guard refuses the private key where a public one belongs (it would be a leak).
    with pytest.raises(ValueError, match="must start with 'whsec_'"):
        SignatureVerifier([private])


def test_bytes_does_not_apply_to_ed25519(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, "--ed25519", "--bytes", "32")
    assert (code, lines) == (ExitCode.USAGE, [])
    assert "--bytes sizes a whsec_ secret" in err


@pytest.mark.parametrize("pair", [False, True])
def test_output_writes_a_new_private_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pair: bool
) -> None:
    target = tmp_path / "signing-secret.txt"
    code, lines, err = run(capsys, "--output", str(target), *(["--ed25519"] if pair else []))
    assert code == ExitCode.OK
    assert lines == []  # nothing on stdout
    keys = target.read_text().splitlines()
    assert [k.split("_")[0] for k in keys] == (["whsk", "whpk"] if pair else ["whsec"])
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert all(key not in err for key in keys)
    # Never overwritten: the file may hold the key a deployment uses.
    assert run(capsys, "--output", str(target))[0] == ExitCode.USAGE
    assert target.read_text().splitlines() == keys
