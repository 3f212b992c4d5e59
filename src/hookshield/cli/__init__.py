"""The ``hookshield`` command: thin parsing on top of the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from hookshield import __version__
from hookshield.cli.exit_codes import ExitCode

__all__ = ["ExitCode", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookshield",
        description="Guard Django webhooks behind mutual TLS; scan such endpoints from outside.",
    )
    parser.add_argument("--version", action="version", version=f"hookshield {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        try:
            import_module(f"hookshield.cli.{command.replace('-', '_')}").add_parser(subparsers)
        except ModuleNotFoundError as exc:
            if not _missing_extra(exc):
                raise
            _stand_in(subparsers, command)
    return parser


# The commands, each in a module of this package; all but pki and secret need the "cli" extra.
_COMMANDS = ("demo", "pki", "proxy-config", "scan", "secret", "send", "serve")
CLI_EXTRA = ("httpx", "rich", "uvicorn", "yaml")


def _missing_extra(exc: ModuleNotFoundError) -> bool:
    return (exc.name or "").partition(".")[0] in CLI_EXTRA


def _needs_extra(command: str) -> int:
    sys.stderr.write(
        f"hookshield {command} needs the command-line extra: pip install 'hookshield[cli]'\n"
    )
    return ExitCode.USAGE


def _stand_in(subparsers: Any, command: str) -> None:
    """A command whose dependencies are not installed: listed, and saying what to install."""
    p = subparsers.add_parser(command, help="(needs pip install 'hookshield[cli]')", add_help=False)
    p.add_argument("arguments", nargs=argparse.REMAINDER)
    p.set_defaults(handler=lambda args: _needs_extra(command))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(handler(args))
    except ModuleNotFoundError as exc:  # a command that imports its extra when it runs
        if not _missing_extra(exc):
            raise
        return _needs_extra(str(args.command))
