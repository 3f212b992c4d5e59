"""The ``hookshield`` command: thin parsing on top of the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hookshield import __version__
from hookshield.cli import demo, pki, proxy_config, scan, serve
from hookshield.cli.exit_codes import ExitCode

__all__ = ["ExitCode", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookshield",
        description="Guard Django webhooks behind mutual TLS; scan such endpoints from outside.",
    )
    parser.add_argument("--version", action="version", version=f"hookshield {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(subparsers)
    pki.add_parser(subparsers)
    proxy_config.add_parser(subparsers)
    scan.add_parser(subparsers)
    serve.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    return int(handler(args))
