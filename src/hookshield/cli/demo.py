"""``hookshield demo``: the naive and the shielded webhook, served over mTLS and scanned."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the whole story in one command: PKI, mTLS server, naive vs shielded, scanned",
        description="Make a throwaway PKI, serve a demo Django project over mutual TLS with "
        "hookshield serve (one payment webhook exposed twice: a naive view and the same logic "
        "behind @webhook), scan both and print them side by side.",
    )
    p.add_argument("--keep", action="store_true", help="keep serving after the scans (Ctrl-C)")
    p.add_argument("--dir", type=Path, help="where the PKI goes (default ~/.cache/hookshield/demo)")
    p.add_argument("--port", type=int, help="serve on this port (default: a free one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hookshield.demo import run_demo

    return run_demo(keep=args.keep, directory=args.dir, port=args.port)
