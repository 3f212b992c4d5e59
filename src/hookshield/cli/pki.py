"""``hookshield pki``: a throwaway CA in a directory, for development and tests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hookshield.cli.exit_codes import ExitCode
from hookshield.pki.store import CaDirectory, PkiError

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pki",
        help="a development CA: init, issue, revoke, crl",
        description="A certificate authority kept in a directory, issuing RFC 5280 conformant "
        "client and server certificates (strict verifiers accept them). For development and "
        "tests only.",
    )
    commands = p.add_subparsers(dest="pki_command", metavar="COMMAND", required=True)

    init = commands.add_parser("init", help="create a CA in DIR")
    init.add_argument("dir", type=Path)
    init.add_argument("--name", default="hookshield development CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=3650, help="the CA's lifetime (3650)")
    init.add_argument(
        "--intermediate",
        action="store_true",
        help="also create an intermediate CA (issue --via-intermediate)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(handler=_init)

    issue = commands.add_parser("issue", help="issue a client or server certificate")
    issue.add_argument("dir", type=Path)
    issue.add_argument("name", help="file name: writes DIR/NAME.pem and DIR/NAME.key")
    issue.add_argument("--spiffe-id", help="the client's SPIFFE ID (spiffe://trust.domain/path)")
    issue.add_argument("--dns", action="append", default=[], help="a DNS SAN (repeatable)")
    issue.add_argument("--uri", action="append", default=[], help="a URI SAN (repeatable)")
    issue.add_argument("--cn", help="a subject common name")
    issue.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="HOST",
        help="issue a server certificate for this host or IP (repeatable)",
    )
    issue.add_argument("--days", type=int, default=30, help="lifetime in days (30)")
    issue.add_argument(
        "--via-intermediate",
        action="store_true",
        help="sign with the intermediate CA; the chain goes into NAME.pem",
    )
    issue.set_defaults(handler=_issue)

    revoke = commands.add_parser("revoke", help="revoke an issued certificate and rewrite the CRLs")
    revoke.add_argument("dir", type=Path)
    revoke.add_argument("name")
    revoke.set_defaults(handler=_revoke)

    crl = commands.add_parser("crl", help="rewrite the CRLs (DIR/crl.pem, intermediate-crl.pem)")
    crl.add_argument("dir", type=Path)
    crl.add_argument("--days", type=int, default=7, help="until the next update (7)")
    crl.set_defaults(handler=_crl)


def _guarded(run: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            return int(run(args))
        except PkiError as exc:
            sys.stderr.write(f"hookshield pki: {exc}\n")
            return ExitCode.USAGE

    return handler


@_guarded
def _init(args: argparse.Namespace) -> int:
    ca = CaDirectory(args.dir)
    ca.init(args.name, days=args.days, intermediate=args.intermediate, force=args.force)
    print(
        f"CA in {args.dir}: ca.pem (trust anchor), ca.key (keep private), crl.pem"
        + (
            ", intermediate.pem (for INTERMEDIATES: proxy-config --intermediates)"
            if args.intermediate
            else ""
        )
    )
    return ExitCode.OK


@_guarded
def _issue(args: argparse.Namespace) -> int:
    issued = CaDirectory(args.dir).issue(
        args.name,
        spiffe_id=args.spiffe_id,
        dns_names=tuple(args.dns),
        uris=tuple(args.uri),
        common_name=args.cn,
        server_hosts=tuple(args.server),
        days=args.days,
        via_intermediate=args.via_intermediate,
    )
    kind = "server" if args.server else "client"
    cert = issued.certificate
    print(
        f"{kind} certificate {args.dir / (args.name + '.pem')} (serial "
        f"{cert.serial_number:x}, until {cert.not_valid_after_utc:%Y-%m-%d})"
    )
    return ExitCode.OK


@_guarded
def _revoke(args: argparse.Namespace) -> int:
    CaDirectory(args.dir).revoke(args.name)
    print(f"revoked {args.name}; CRLs rewritten in {args.dir}")
    return ExitCode.OK


@_guarded
def _crl(args: argparse.Namespace) -> int:
    for path in CaDirectory(args.dir).write_crls(days=args.days):
        print(path)
    return ExitCode.OK
