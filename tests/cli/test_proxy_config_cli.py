"""``hookshield proxy-config``: what it prints for Django, and the files it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hookshield.cli import ExitCode, main
from tests.conftest import TestPki


def run(pki: TestPki, *extra: str) -> int:
    cert, key = pki.files("server")
    return main(["proxy-config", "nginx", "--cert", str(cert), "--key", str(key), *extra])


def printed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(capsys.readouterr().err, namespace)  # noqa: S102  (the CLI's own settings text)
    return dict(namespace["HOOKSHIELD"])


def test_intermediates_are_printed_for_the_guard(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    intermediate = tmp_path / "intermediate.pem"
    intermediate.write_bytes(pki.intermediate.cert_pem)
    assert run(pki, "--client-ca", str(pki.ca_file), "--intermediates", str(intermediate)) == 0
    settings = printed(capsys)
    assert settings["TRUST_ANCHORS"] == [str(pki.ca_file.resolve())]
    assert settings["INTERMEDIATES"] == [str(intermediate.resolve())]


def test_a_chain_file_as_client_ca_is_printed_as_intermediates_too(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.intermediate.cert_pem + pki.root.cert_pem)
    assert run(pki, "--client-ca", str(chain)) == 0
    settings = printed(capsys)
    assert settings["TRUST_ANCHORS"] == [str(chain.resolve())]
    assert settings["INTERMEDIATES"] == [str(chain.resolve())]


def test_without_intermediates_none_are_printed(
    pki: TestPki, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(pki, "--client-ca", str(pki.ca_file)) == 0
    assert "INTERMEDIATES" not in printed(capsys)


@pytest.mark.parametrize("option", ["--client-ca", "--intermediates"])
def test_a_file_that_is_no_ca_certificate_is_a_usage_error(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    leaf, _ = pki.files("allowed")
    missing = tmp_path / "missing.pem"
    for bad, why in ((leaf, "is not a CA certificate"), (missing, "No such file")):
        args = ["--client-ca", str(pki.ca_file), option, str(bad)]
        assert run(pki, *args) == ExitCode.USAGE
        assert why in capsys.readouterr().err


@pytest.mark.parametrize("size", ["0", str(64 * 1024 * 1024 + 1)])
def test_max_body_out_of_range_is_a_usage_error(
    pki: TestPki, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    assert run(pki, "--client-ca", str(pki.ca_file), "--max-body", size) == ExitCode.USAGE
    assert "--max-body must be 1 to" in capsys.readouterr().err
