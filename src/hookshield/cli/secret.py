"""``hookshield secret``: a fresh Standard Webhooks signing key, ready for the settings.

The key goes to stdout, alone on its line (``SECRET=$(hookshield secret)`` works); where each
one belongs goes to stderr as ``#`` comments. Needs nothing beyond the base install.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hookshield.cli.exit_codes import ExitCode
from hookshield.core.signatures import (
    MAX_SECRET_BYTES,
    MIN_SECRET_BYTES,
    new_ed25519_keys,
    new_hmac_secret,
)

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  hookshield secret                                # whsec_...: the guard and the sender share it
  hookshield secret --output signing-secret.txt    # the same, in a new file only you can read
  hookshield secret --ed25519 --endpoint payments  # whsk_... (sender) then whpk_... (guard)
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "secret",
        help="print a fresh whsec_ signing secret (or an Ed25519 whsk_/whpk_ pair)",
        description="Print a fresh Standard Webhooks signing key for an endpoint's "
        "SIGNING_SECRETS: a whsec_ HMAC secret (v1 signatures) that the guard and the sender "
        "share, or with --ed25519 a key pair (v1a signatures): the whsk_ private key for the "
        "sender, the whpk_ public key for the guard. Keys go to stdout, the settings key each "
        "one goes into to stderr.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--ed25519",
        action="store_true",
        help="an Ed25519 key pair instead: whsk_ (private, the sender's) then whpk_ (public, the "
        "guard's)",
    )
    p.add_argument(
        "--bytes",
        type=int,
        metavar="N",
        help=f"random bytes in a whsec_ secret, {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} (32)",
    )
    p.add_argument(
        "--endpoint",
        default="NAME",
        metavar="NAME",
        help="the endpoint name to show in the settings key (default: NAME)",
    )
    p.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write the key(s) to FILE instead of stdout: a new file, readable by you only "
        "(an existing one is never overwritten)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        keys = _keys(args)
    except ValueError as exc:
        sys.stderr.write(f"hookshield secret: {exc}\n")
        return ExitCode.USAGE
    if args.output is None:
        for label, key in keys:  # each label before its key, as a terminal shows both
            sys.stderr.write(label + "\n")
            sys.stderr.flush()
            sys.stdout.write(key + "\n")
            sys.stdout.flush()
        return ExitCode.OK
    try:
        descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        sys.stderr.write(f"hookshield secret: --output {args.output}: {exc.strerror}\n")
        return ExitCode.USAGE
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write("".join(f"{key}\n" for _, key in keys))
    sys.stderr.write(f"# wrote {args.output} (mode 0600: readable by you only)\n")
    sys.stderr.write("".join(f"{label}\n" for label, _ in keys))
    return ExitCode.OK


def _keys(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The new key(s), each with a comment saying where it goes."""
    setting = f'HOOKSHIELD["ENDPOINTS"]["{args.endpoint}"]["SIGNING_SECRETS"]'
    send = "hookshield send --secret-file"
    if args.ed25519:
        if args.bytes is not None:
            raise ValueError("--bytes sizes a whsec_ secret; an Ed25519 key is always 32 bytes")
        private, public = new_ed25519_keys()
        return [
            (
                f"# private key, for the sender, who signs with it ({send}); keep it secret:",
                private,
            ),
            (f"# public key, for the guard: add it to {setting}:", public),
        ]
    size = 32 if args.bytes is None else args.bytes
    if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise ValueError(f"--bytes: from {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}, not {size}")
    return [
        (
            f"# shared secret, for the guard: add it to {setting};\n"
            f"# and for the sender, who signs with it ({send}); keep it secret:",
            new_hmac_secret(size),
        )
    ]
