"""One exit-code contract for every command (never one code for "findings" and "crash")."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    BELOW_THRESHOLD = 1  # scan: a score below --threshold, or a finding at --fail-on or above;
    # proxy-config --check: the terminator refused the configuration
    USAGE = 2  # a bad flag, an unreadable file, invalid configuration
    UNREACHABLE = 3  # scan: a target could not be reached at all
    INCOMPLETE = 4  # scan: the baseline was refused or coverage is below --min-coverage
