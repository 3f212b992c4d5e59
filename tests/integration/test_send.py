"""``hookshield send`` against the real guarded app, over mutual TLS (``hookshield serve``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from hookshield.cli import ExitCode, main
from hookshield.core.signatures import new_ed25519_keys, new_hmac_secret
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.servers import App, serve_with_test_pki

pytestmark = pytest.mark.integration

SECRET = new_hmac_secret()
PRIVATE, PUBLIC = new_ed25519_keys()


@pytest.fixture(scope="module")
def app(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    config = guard_config(
        pki,
        TRUSTED_PROXIES=[],
        REPLAY_STORAGE="memory://",  # one uvicorn process
        ENDPOINTS={"strict": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET, PUBLIC]}},
    )
    with serve_with_test_pki(tmp_path_factory.mktemp("send"), config, pki) as app:
        yield app


def send(
    capsys: pytest.CaptureFixture[str],
    pki: TestPki,
    app: App,
    *options: str,
    cert: str | None = "allowed",
    path: str = "/hooks/strict/",
) -> tuple[int, str, str]:
    args = ["send", f"https://127.0.0.1:{app.port}{path}", "--ca", str(pki.ca_file)]
    if cert is not None:
        cert_file, key_file = pki.files(cert)
        args += ["--cert", str(cert_file), "--key", str(key_file)]
    code = main([*args, *options])
    out = capsys.readouterr()
    return code, out.out, out.err


def answers(stdout: str) -> list[tuple[int, Any]]:
    """Each answer's status and JSON body, in order, from what send printed."""
    found: list[tuple[int, Any]] = []
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("-> "):
            rest = []
            for body_line in lines[index + 1 :]:
                if body_line.startswith(("-> ", "POST ")):
                    break
                rest.append(body_line)
            found.append((int(line.split()[1]), json.loads("\n".join(rest))))
    return found


@pytest.mark.parametrize(("key", "version"), [(SECRET, "v1"), (PRIVATE, "v1a")])
def test_a_signed_delivery_is_accepted(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App, key: str, version: str
) -> None:
    code, out, err = send(capsys, pki, app, "--secret", key, "--data", '{"type": "paid"}')
    assert code == ExitCode.OK, out + err
    [(status, body)] = answers(out)
    assert status == 200
    assert body["type"] == "paid"
    assert body["delivery_id"].startswith("msg_")
    assert f"as {ALLOWED}, signed ({version}), webhook-id {body['delivery_id']}" in out
    assert key.split("_", 1)[1] not in out + err  # the key is never printed


def test_each_run_is_a_new_delivery(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App
) -> None:
    ids = set()
    for _ in range(2):
        code, out, _ = send(capsys, pki, app, "--secret", SECRET)
        assert code == ExitCode.OK
        ids.add(answers(out)[0][1]["delivery_id"])
    assert len(ids) == 2


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_body_from_a_file_or_stdin(
    capsys: pytest.CaptureFixture[str],
    pki: TestPki,
    app: App,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    body = b'{"type": "from.a.file"}'
    path = tmp_path / "body.json"
    path.write_bytes(body)
    if source == "stdin":
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body)))
    where = str(path) if source == "file" else "-"
    code, out, _ = send(capsys, pki, app, "--secret", SECRET, "--file", where)
    assert code == ExitCode.OK
    assert answers(out)[0][1]["type"] == "from.a.file"
    assert f", {len(body)} bytes" in out


def test_a_key_from_a_file(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App, tmp_path: Any
) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"{PRIVATE}\n{PUBLIC}\n")  # what hookshield secret --ed25519 writes
    code, out, _ = send(capsys, pki, app, "--secret-file", str(key_file))
    assert code == ExitCode.OK
    assert "signed (v1a)" in out


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        (["--secret", new_hmac_secret()], 401, "signature_invalid"),
        (["--secret", new_ed25519_keys()[0]], 401, "signature_invalid"),
        ([], 401, "signature_missing"),
        (
            ["--secret", SECRET, "--header", "webhook-timestamp: 1600000000"],
            401,
            "timestamp_out_of_tolerance",
        ),
        (["--secret", SECRET, "--data", "{not json"], 400, "malformed_body"),
    ],
)
def test_the_guard_s_refusal_is_shown(
    capsys: pytest.CaptureFixture[str],
    pki: TestPki,
    app: App,
    options: list[str],
    status: int,
    code: str,
) -> None:
    result, out, err = send(capsys, pki, app, *options)
    assert result == ExitCode.REFUSED
    [(got, body)] = answers(out)
    assert (got, body["error"]["code"]) == (status, code)
    assert err == ""


def test_replay_shows_the_refusal(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App
) -> None:
    code, out, _ = send(capsys, pki, app, "--secret", SECRET, "--replay")
    assert code == ExitCode.OK
    (first, accepted), (second, refused) = answers(out)
    assert (first, second) == (200, 409)
    assert refused["error"]["code"] == "delivery_replayed"
    assert f"webhook-id {accepted['delivery_id']}" in out  # the one id, sent twice
    assert "POST again: the same headers and body" in out


def test_a_replay_accepted_twice_has_its_own_exit_code(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App
) -> None:
    # "payments" checks no signatures, so nothing remembers the webhook-id.
    code, out, _ = send(capsys, pki, app, "--secret", SECRET, "--replay", path="/hooks/payments/")
    assert code == ExitCode.REPLAY_ACCEPTED
    assert [status for status, _ in answers(out)] == [200, 200]


def test_another_identity_is_refused_by_the_guard(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App
) -> None:
    code, out, _ = send(capsys, pki, app, "--secret", SECRET, cert="other")
    assert code == ExitCode.REFUSED
    assert answers(out)[0][0] == 403
    assert answers(out)[0][1]["error"]["code"] == "identity_not_allowed"


@pytest.mark.parametrize("cert", [None, "foreign", "expired"])
def test_a_handshake_refusal_is_one_line(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App, cert: str | None
) -> None:
    code, out, err = send(capsys, pki, app, "--secret", SECRET, cert=cert)
    assert code == ExitCode.UNREACHABLE
    assert answers(out) == []
    assert len(err.splitlines()) == 1, err
    assert err.startswith("hookshield send: ")
    assert "Traceback" not in err
    hint = "a client certificate required?" if cert is None else "certificate refused"
    assert hint in err


def test_an_untrusted_server_certificate_is_one_line(
    capsys: pytest.CaptureFixture[str], pki: TestPki, app: App
) -> None:
    code = main(["send", f"https://127.0.0.1:{app.port}/hooks/strict/", "--secret", SECRET])
    err = capsys.readouterr().err
    assert code == ExitCode.UNREACHABLE
    assert len(err.splitlines()) == 1
    assert "the server certificate does not verify" in err
