"""``hookshield demo`` as a user runs it: F for the naive view, A for the shielded one, and no
process left behind."""

from __future__ import annotations

import itertools
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hookshield.cli import ExitCode, main
from hookshield.demo import _by_hand, prepare, served
from hookshield.demo.processes import free_port
from tests.integration.servers import REPO

pytestmark = pytest.mark.integration


def test_the_demo_grades_naive_f_and_shielded_a(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hookshield",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    grade_row = next(line for line in result.stdout.splitlines() if "│ grade" in line)
    assert "F" in grade_row.split("│")[2]
    assert "A" in grade_row.split("│")[3]
    for check in ("auth.no-client-cert", "replay.unsigned-accepted", "rate.no-limit"):
        assert check in result.stdout
    # Accepted without a certificate: certificate findings would prove nothing more.
    assert "Not provable on the naive view" in result.stdout
    assert "authz.foreign-identity" in result.stdout
    assert "send https://127.0.0.1" in result.stdout  # the commands to try it by hand
    assert "--secret-file" in result.stdout
    with socket.socket() as probe:  # the server is gone
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_prepare_makes_a_fresh_pki(tmp_path: Path) -> None:
    files = prepare(tmp_path / "demo")
    for name in (
        "ca.pem",
        "ca.key",
        "crl.pem",
        "payments-gateway.pem",
        "reporting.pem",
        "server.pem",
        "signing-secret.txt",
    ):
        assert (files.directory / name).is_file()
    assert files.signing_secret.startswith("whsec_")
    assert (files.directory / "signing-secret.txt").stat().st_mode & 0o077 == 0
    again = prepare(tmp_path / "demo")  # a rerun replaces it
    assert again.signing_secret != files.signing_secret


def test_the_commands_to_try_by_hand_answer_as_their_comments_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = prepare(tmp_path / "demo")
    with served(files) as port:
        lines = _by_hand(files, port).splitlines()
        said, answered = [], []
        for comment, command in itertools.pairwise(lines):
            if " send " not in command:
                continue
            argv = shlex.split(command)
            code = main(argv[argv.index("send") :])
            statuses = re.findall(r"^-> (\d{3}) ", capsys.readouterr().out, flags=re.MULTILINE)
            said.append(re.findall(r"\b[1-5]\d\d\b", comment))
            answered.append((code, statuses))
    assert said == [[], ["401"], ["403"], ["200", "409"]]
    assert answered == [
        (ExitCode.OK, ["200"]),
        (ExitCode.REFUSED, ["401"]),
        (ExitCode.REFUSED, ["403"]),
        (ExitCode.OK, ["200", "409"]),
    ]
