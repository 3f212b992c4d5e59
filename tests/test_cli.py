from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import hookshield
from hookshield.cli import ExitCode, main


def test_version_from_the_console_script() -> None:
    # The script installed beside this interpreter (the virtualenv), not one elsewhere on PATH.
    script = str(Path(sys.executable).parent / "hookshield")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"hookshield {hookshield.__version__}"
    assert hookshield.__version__ != "0.0.0+unknown"


def test_version_from_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookshield", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.startswith("hookshield ")


def test_no_command_prints_help_and_exits_with_the_usage_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == ExitCode.USAGE
    assert "usage: hookshield" in capsys.readouterr().err
