"""``hookshield pki`` end to end: files that OpenSSL and the guard both accept."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from hookshield.cli import main
from hookshield.core.certs import PresentedChain, load_chain
from hookshield.core.errors import Code, Rejection
from hookshield.core.revocation import RevocationLists
from hookshield.core.verify import Verified, Verifier
from tests.conftest import ALLOWED, require_service


def der_chain(path: Path) -> PresentedChain:
    from cryptography.hazmat.primitives.serialization import Encoding

    return PresentedChain(
        tuple(c.public_bytes(Encoding.DER) for c in load_chain(path.read_bytes())), "test"
    )


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    assert main(["pki", "init", str(directory), "--intermediate", "--name", "test CA"]) == 0
    return directory


def test_init_issue_and_verify(ca_dir: Path) -> None:
    assert (
        main(
            [
                "pki",
                "issue",
                str(ca_dir),
                "payments",
                "--spiffe-id",
                ALLOWED,
                "--via-intermediate",
                "--days",
                "10",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "pki",
                "issue",
                str(ca_dir),
                "server",
                "--server",
                "127.0.0.1",
                "--server",
                "localhost",
            ]
        )
        == 0
    )
    leaf = ca_dir / "payments.pem"
    assert (ca_dir / "payments.key").stat().st_mode & 0o077 == 0
    chain = load_chain(leaf.read_bytes())
    assert len(chain) == 2  # leaf and intermediate
    assert chain[0].not_valid_after_utc - chain[0].not_valid_before_utc == dt.timedelta(days=10)
    anchors = load_chain((ca_dir / "ca.pem").read_bytes())
    verified = Verifier(anchors).verify(der_chain(leaf))
    assert isinstance(verified, Verified)
    assert verified.identity.spiffe_id == ALLOWED
    server = load_chain((ca_dir / "server.pem").read_bytes())[0]
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["127.0.0.1", "localhost"]
    index = json.loads((ca_dir / "issued.json").read_text())
    assert [e["name"] for e in index] == ["payments", "server"]


def test_openssl_accepts_what_it_issues(ca_dir: Path) -> None:
    if shutil.which("openssl") is None:
        require_service("the openssl command is not installed")
    main(["pki", "issue", str(ca_dir), "payments", "--spiffe-id", ALLOWED, "--via-intermediate"])
    main(["pki", "issue", str(ca_dir), "server", "--server", "127.0.0.1"])
    for name, purpose in (("payments", "sslclient"), ("server", "sslserver")):
        result = subprocess.run(
            [
                "openssl",
                "verify",
                "-x509_strict",
                "-CAfile",
                str(ca_dir / "ca.pem"),
                "-untrusted",
                str(ca_dir / "intermediate.pem"),
                "-purpose",
                purpose,
                str(ca_dir / f"{name}.pem"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith("OK")


def test_revoke_rewrites_the_crl(ca_dir: Path) -> None:
    main(["pki", "issue", str(ca_dir), "payments", "--spiffe-id", ALLOWED, "--via-intermediate"])
    main(["pki", "issue", str(ca_dir), "billing", "--spiffe-id", "spiffe://corp.example/billing"])
    assert main(["pki", "revoke", str(ca_dir), "payments"]) == 0
    anchors = load_chain((ca_dir / "ca.pem").read_bytes())
    crls = RevocationLists([ca_dir / "crl.pem", ca_dir / "intermediate-crl.pem"])
    verifier = Verifier(anchors, revocation=crls)
    revoked = verifier.verify(der_chain(ca_dir / "payments.pem"))
    assert isinstance(revoked, Rejection)
    assert revoked.code is Code.CLIENT_CERT_REVOKED
    assert isinstance(verifier.verify(der_chain(ca_dir / "billing.pem")), Verified)
    assert main(["pki", "crl", str(ca_dir), "--days", "1"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pki", "issue", "{dir}", "x"], "name the client"),
        (["pki", "issue", "{dir}", "bad name", "--dns", "a.test"], "use letters"),
        (["pki", "issue", "{dir}", "ca", "--dns", "a.test"], "reserved"),
        (["pki", "issue", "{dir}", "s", "--server", "h", "--dns", "a.test"], "server certificate"),
        (["pki", "revoke", "{dir}", "nobody"], "no certificate named"),
        (["pki", "init", "{dir}"], "already holds a CA"),
        (["pki", "issue", "{empty}", "x", "--dns", "a.test"], "holds no CA"),
    ],
)
def test_usage_errors(
    ca_dir: Path, tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    filled = [a.format(dir=ca_dir, empty=tmp_path / "empty") for a in argv]
    assert main(filled) == 2
    assert message in capsys.readouterr().err
