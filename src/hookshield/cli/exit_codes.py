"""One exit-code contract for every command (never one code for "findings" and "crash")."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0  # send: the delivery was accepted (2xx) and, with --replay, its repetition refused
    BELOW_THRESHOLD = 1  # scan: a score below --threshold, or a finding at --fail-on or above;
    # proxy-config --check: the terminator refused the configuration
    USAGE = 2  # a bad flag, an unreadable file, invalid configuration
    # scan: a target could not be reached at all; send: no answer (connection refused, TLS
    # handshake failed, timeout)
    UNREACHABLE = 3
    INCOMPLETE = 4  # scan: the baseline was refused or coverage is below --min-coverage
    REFUSED = 5  # send: the delivery was answered with a status other than 2xx
    REPLAY_ACCEPTED = 6  # send --replay: the repeated delivery was accepted as well
