"""A signing secret read from a file, kept out of the process list and the shell's history."""

from __future__ import annotations

from pathlib import Path

__all__ = ["first_line_secret"]


def first_line_secret(path: Path) -> str:
    """The key on the first line of ``path`` (what ``hookshield secret --output`` writes).

    Raises ``ValueError`` saying what is wrong, never what the file holds.
    """
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}") from exc
    if not lines or not lines[0].strip():
        raise ValueError(f"{path} has no key on its first line")
    return lines[0].strip()
