"""tools/complexity.py, which make test's lint step runs over src/."""

from __future__ import annotations

from pathlib import Path
from textwrap import indent

import pytest

from tools.complexity import main

BRANCHY = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(13))


def test_functions_methods_and_closures_over_the_limit_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (
        f"def flat(x):\n{BRANCHY}\n"
        f"class C:\n    def method(self, x):\n{indent(BRANCHY, '    ')}\n"
        f"def outer():\n    def inner(x):\n{indent(BRANCHY, '    ')}\n    return inner\n"
    )
    (tmp_path / "mod.py").write_text(source)
    assert main([str(tmp_path), "--max", "12"]) == 1
    reported = capsys.readouterr().out
    assert "flat has cyclomatic complexity 14 > 12" in reported
    assert "C.method has cyclomatic complexity 14 > 12" in reported
    assert "inner has cyclomatic complexity 14 > 12" in reported


def test_a_tree_within_the_limit_passes(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(f"def flat(x):\n{BRANCHY}\n")
    assert main([str(tmp_path), "--max", "14"]) == 0
