"""The ``hookshield`` command: thin parsing on top of the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from enum import IntEnum

from hookshield import __version__

__all__ = ["ExitCode", "main"]


class ExitCode(IntEnum):
    OK = 0
    BELOW_THRESHOLD = 1
    USAGE = 2
    UNREACHABLE = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookshield",
        description="Guard Django webhooks behind mutual TLS; scan such endpoints from outside.",
    )
    parser.add_argument("--version", action="version", version=f"hookshield {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    # Subcommands (scan, pki, serve, proxy-config, demo) register here as they land.
    parser.print_help(sys.stderr)
    return ExitCode.USAGE
