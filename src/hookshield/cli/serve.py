"""``hookshield serve module:application``: an mTLS dev server (uvicorn underneath)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hookshield.cli.exit_codes import ExitCode

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve an ASGI app (Django's asgi.py) over mutual TLS",
        description="Serve an ASGI application with uvicorn, terminating mutual TLS and handing "
        "the client certificate to Django through the ASGI TLS extension, so HOOKSHIELD "
        "['CERT_SOURCE'] = 'asgi-tls' works with no proxy. For development and small deployments.",
    )
    p.add_argument(
        "app", help="the ASGI application, as module:attribute (e.g. mysite.asgi:application)"
    )
    p.add_argument(
        "--cert", type=Path, required=True, help="server certificate (PEM, chain allowed)"
    )
    p.add_argument("--key", type=Path, required=True, help="its private key (PEM)")
    p.add_argument(
        "--client-ca", type=Path, required=True, help="CA bundle client certificates must chain to"
    )
    p.add_argument(
        "--client-auth",
        choices=("required", "optional"),
        default="required",
        help="required: no handshake without a verified certificate (default); "
        "optional: requests without one reach the app, which must refuse them",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for flag, path in (("--cert", args.cert), ("--key", args.key), ("--client-ca", args.client_ca)):
        if not path.is_file():
            sys.stderr.write(f"hookshield serve: {flag}: cannot read {path}\n")
            return ExitCode.USAGE
    if ":" not in args.app:
        sys.stderr.write(
            "hookshield serve: the app is module:attribute, e.g. mysite.asgi:application\n"
        )
        return ExitCode.USAGE
    from hookshield.serve import ServeOptions, serve

    serve(
        ServeOptions(
            app=args.app,
            cert=args.cert,
            key=args.key,
            client_ca=args.client_ca,
            client_auth=args.client_auth,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
    )
    return ExitCode.OK
