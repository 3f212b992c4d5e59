"""``hookshield proxy-config nginx|haproxy|envoy``: a hardened terminator configuration."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from cryptography import x509

from hookshield.cli.exit_codes import ExitCode
from hookshield.core.certs import load_chain
from hookshield.core.errors import HookshieldError
from hookshield.proxy_config import ProxyOptions, django_settings, envoy, haproxy, new_secret, nginx

__all__ = ["add_parser"]

_SOURCES = {
    "nginx": ("nginx", "X-SSL-Client-Verify"),
    "haproxy": ("haproxy", "X-SSL-Client-Verify"),
    "envoy": ("envoy-xfcc", None),
}
# Webhook bodies are small; HAProxy holds a buffer above the limit for every connection.
MAX_BODY_LIMIT = 64 * 1024 * 1024
_RENDER = {"nginx": nginx.render, "haproxy": haproxy.render, "envoy": envoy.render}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "proxy-config",
        help="print a hardened nginx, HAProxy or Envoy configuration for the guard",
        description="Print a TLS terminator configuration (stdout) that verifies client "
        "certificates, overwrites every certificate header on every request, adds a fresh "
        "PROXY_SECRET, drops underscore header names, limits bodies and hides its version; and "
        "the matching HOOKSHIELD settings (stderr).",
    )
    p.add_argument("proxy", choices=sorted(_RENDER))
    p.add_argument("--upstream", default="127.0.0.1:8000", help="the Django app (host:port)")
    p.add_argument("--client-ca", type=Path, required=True, help="CA of the client certificates")
    p.add_argument(
        "--intermediates",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="intermediate CA certificates that issue client certificates under --client-ca "
        "(repeatable); printed as INTERMEDIATES, since the proxy forwards only the leaf",
    )
    p.add_argument("--cert", type=Path, required=True, help="the proxy's server certificate")
    p.add_argument("--key", type=Path, required=True, help="its private key")
    p.add_argument("--listen", type=int, default=443)
    p.add_argument("--server-name", default="_")
    p.add_argument(
        "--max-body",
        type=int,
        default=262144,
        help=f"bytes, 1 to {MAX_BODY_LIMIT} (262144); HAProxy buffers this much per connection",
    )
    p.add_argument("--secret", help="the PROXY_SECRET to use (default: a fresh random one)")
    p.set_defaults(handler=run)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", args.upstream):
        return f"--upstream {args.upstream!r} is not host:port"
    if args.secret is not None and (
        len(args.secret) < 16 or '"' in args.secret or "\\" in args.secret
    ):
        return "--secret needs 16+ characters, no quotes"
    if not 1 <= args.max_body <= MAX_BODY_LIMIT:
        return f"--max-body must be 1 to {MAX_BODY_LIMIT}"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem is not None:
        sys.stderr.write(f"hookshield proxy-config: {problem}\n")
        return ExitCode.USAGE
    loaded: dict[Path, list[x509.Certificate]] = {}
    for path in (args.client_ca, *args.intermediates):
        certificates = _ca_certificates(path)
        if isinstance(certificates, str):
            sys.stderr.write(f"hookshield proxy-config: {path}: {certificates}\n")
            return ExitCode.USAGE
        loaded[path] = certificates
    intermediates = [path.resolve() for path in args.intermediates]
    if any(c.issuer != c.subject for c in loaded[args.client_ca]):
        # A chain file: the guard trusts only its root and builds paths through the rest
        # (see INTERMEDIATES in the README), as nginx does with the same file.
        intermediates.insert(0, args.client_ca.resolve())
    options = ProxyOptions(
        upstream=args.upstream,
        client_ca=args.client_ca.resolve(),
        cert=args.cert.resolve(),
        key=args.key.resolve(),
        secret=args.secret or new_secret(),
        listen=args.listen,
        server_name=args.server_name,
        max_body=args.max_body,
        intermediates=tuple(intermediates),
    )
    sys.stdout.write(_RENDER[args.proxy](options))
    source, verify = _SOURCES[args.proxy]
    sys.stderr.write(django_settings(source, options, verify_header=verify))
    return ExitCode.OK


def _ca_certificates(path: Path) -> list[x509.Certificate] | str:
    """The CA certificates in a file, or why it cannot serve as a CA file."""
    try:
        certificates = list(load_chain(path.read_bytes(), str(path)))
    except OSError as exc:
        return exc.strerror or str(exc)
    except HookshieldError as exc:
        return str(exc)
    for certificate in certificates:
        try:
            is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            return f"{certificate.subject.rfc4514_string()} is not a CA certificate"
    return certificates
