"""``hookshield proxy-config <terminator>``: a hardened terminator configuration."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from hookshield.cli.exit_codes import ExitCode
from hookshield.core.certs import load_chain
from hookshield.core.errors import HookshieldError
from hookshield.proxy_config import (
    ProxyOptions,
    apache,
    caddy,
    check,
    django_settings,
    envoy,
    haproxy,
    new_secret,
    nginx,
    traefik,
)

__all__ = ["add_parser"]

_SOURCES = {
    "nginx": ("nginx", "X-SSL-Client-Verify"),
    "haproxy": ("haproxy", "X-SSL-Client-Verify"),
    "envoy": ("envoy-xfcc", None),
    "caddy": ("caddy", None),
    "traefik": ("traefik", None),
    "apache": ("apache", "SSL-Client-Verify"),
}
# Webhook bodies are small; HAProxy holds a buffer above the limit for every connection.
_SECRET = re.compile(r"[A-Za-z0-9._~+/=-]{16,}")
MAX_BODY_LIMIT = 64 * 1024 * 1024
_RENDER: dict[str, Callable[[ProxyOptions], str]] = {
    "nginx": nginx.render,
    "haproxy": haproxy.render,
    "envoy": envoy.render,
    "caddy": caddy.render,
    "apache": apache.render,
}
# What --output names each file (the terminator's usual name where it has one).
_FILE_NAMES = {
    "nginx": "hookshield.conf",
    "haproxy": "haproxy.cfg",
    "envoy": "envoy.yaml",
    "caddy": "Caddyfile",
    "apache": "hookshield-apache.conf",
}
# Terminators that read several files: (options, the directory they will be in) -> files.
_MULTI_FILE: dict[str, Callable[[ProxyOptions, Path], dict[str, str]]] = {"traefik": traefik.render}


class _DefaultsShown(argparse.HelpFormatter):
    """Every flag's help ends with its default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "proxy-config",
        help="print a hardened nginx, HAProxy, Caddy, Traefik, Apache or Envoy configuration",
        description="Print a TLS terminator configuration (stdout, or files in --output) that "
        "requires and verifies client certificates whatever server name a client sends, "
        "overwrites every certificate header on every request, adds a fresh PROXY_SECRET, drops "
        "underscore header names (or, where the terminator cannot, their catalogued ones), "
        "limits bodies and hides its version; and the matching HOOKSHIELD settings (stderr). "
        "What a terminator cannot do is said in the file it writes.",
        formatter_class=_DefaultsShown,
    )
    p.add_argument("proxy", choices=sorted({*_RENDER, *_MULTI_FILE}), help="the TLS terminator")
    p.add_argument(
        "--upstream",
        default="127.0.0.1:8000",
        metavar="HOST:PORT",
        help="the Django app (host:port)",
    )
    p.add_argument(
        "--client-ca",
        type=Path,
        required=True,
        metavar="FILE",
        help="CA of the client certificates (required)",
    )
    p.add_argument(
        "--intermediates",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="intermediate CA certificates that issue client certificates under --client-ca "
        "(repeatable); printed as INTERMEDIATES, since the proxy forwards only the leaf",
    )
    p.add_argument(
        "--cert",
        type=Path,
        required=True,
        metavar="FILE",
        help="the proxy's server certificate (required)",
    )
    p.add_argument(
        "--key", type=Path, required=True, metavar="FILE", help="its private key (required)"
    )
    p.add_argument(
        "--listen",
        type=_listen,
        default="443",
        metavar="[HOST:]PORT",
        help="where the terminator accepts clients: a port (every address) or host:port "
        "(IPv6 in brackets: [::1]:8443)",
    )
    p.add_argument(
        "--server-name",
        default="_",
        metavar="NAME",
        help="nginx server_name (client authentication never depends on the name a client sends)",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=262144,
        metavar="BYTES",
        help=f"largest request body, 1 to {MAX_BODY_LIMIT}; HAProxy buffers this much per "
        "connection",
    )
    p.add_argument(
        "--secret",
        metavar="TEXT",
        help="the PROXY_SECRET to use (default: a fresh random one each run)",
    )
    p.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="write the configuration file(s) into DIR (mode 0600: they hold the secret) "
        "instead of stdout; required for traefik (a static and a dynamic file)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="first run the terminator's own validation (nginx -t, haproxy -c, caddy validate, "
        "apache2 -t, envoy --mode validate) on the generated files; print nothing and exit 1 "
        "if it refuses them, 2 if its binary is not installed",
    )
    p.set_defaults(handler=run)


def _listen(value: str) -> tuple[str, int]:
    """``--listen``: a port, or ``host:port``."""
    match = re.fullmatch(r"(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)?:)?(\d{1,5})", value)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a port (1-65535) nor host:port (IPv6 as [::1]:8443)"
        )
    return match.group(1) or "", int(match.group(2))


def _usage_problem(args: argparse.Namespace) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", args.upstream):
        return f"--upstream {args.upstream!r} is not host:port"
    if args.secret is not None and not _SECRET.fullmatch(args.secret):
        # Nothing a terminator would expand ($var, %[...], {placeholder}) or unquote.
        return "--secret needs 16+ characters of A-Z a-z 0-9 - _ . ~ + / ="
    if not re.fullmatch(r"_|(\*\.)?[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?", args.server_name):
        # Written into configuration files: a host name, nothing a terminator would parse.
        return f"--server-name {args.server_name!r} is not a host name"
    if not 1 <= args.max_body <= MAX_BODY_LIMIT:
        return f"--max-body must be 1 to {MAX_BODY_LIMIT}"
    if args.proxy in _MULTI_FILE and args.output is None:
        return f"{args.proxy} reads several files: give --output DIR"
    return None


def _options(args: argparse.Namespace) -> ProxyOptions | str:
    """The rendering options, or why the CA files cannot be used."""
    loaded: dict[Path, list[x509.Certificate]] = {}
    for path in (args.client_ca, *args.intermediates):
        certificates = _ca_certificates(path)
        if isinstance(certificates, str):
            return f"{path}: {certificates}"
        loaded[path] = certificates
    intermediates = [path.resolve() for path in args.intermediates]
    if any(c.issuer != c.subject for c in loaded[args.client_ca]):
        # A chain file: the guard trusts only its root and builds paths through the rest
        # (see INTERMEDIATES in the README), as nginx does with the same file.
        intermediates.insert(0, args.client_ca.resolve())
    host, port = args.listen if isinstance(args.listen, tuple) else _listen(args.listen)
    return ProxyOptions(
        upstream=args.upstream,
        client_ca=args.client_ca.resolve(),
        cert=args.cert.resolve(),
        key=args.key.resolve(),
        secret=args.secret or new_secret(),
        listen=port,
        listen_host=host,
        server_name=args.server_name,
        max_body=args.max_body,
        intermediates=tuple(intermediates),
    )


def render_files(proxy: str, options: ProxyOptions, directory: Path) -> dict[str, str]:
    """File name -> text, the main file first; ``directory`` is where they will be read from."""
    if proxy in _MULTI_FILE:
        return _MULTI_FILE[proxy](options, directory)
    return {_FILE_NAMES[proxy]: _RENDER[proxy](options)}


def _write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        # Private: each file may hold the proxy secret. Written beside the target and renamed
        # over it, so an existing file's wider mode, or a link planted at its name, is replaced
        # rather than written through.
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        try:
            with os.fdopen(descriptor, "w") as handle:  # mkstemp: mode 0600
                handle.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _check(proxy: str, options: ProxyOptions) -> int | None:
    """Run the terminator's validation on a private copy; an exit code if it did not pass."""
    with tempfile.TemporaryDirectory(prefix="hookshield-check-") as name:
        directory = Path(name)
        files = render_files(proxy, options, directory)
        _write(directory, files)
        try:
            checked = check.validate(proxy, directory / next(iter(files)))
        except check.NoValidator as exc:
            sys.stderr.write(f"hookshield proxy-config --check: {exc}\n")
            return ExitCode.USAGE
    verdict = "accepted" if checked.ok else "REFUSED"
    sys.stderr.write(f"# --check: {checked.command}: {verdict}\n")
    if not checked.ok:
        sys.stderr.write(checked.output + "\n")
        return ExitCode.BELOW_THRESHOLD
    return None


def run(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    options = _options(args) if problem is None else problem
    if isinstance(options, str):
        sys.stderr.write(f"hookshield proxy-config: {options}\n")
        return ExitCode.USAGE
    if args.check:
        failed = _check(args.proxy, options)
        if failed is not None:
            return failed
    if args.output is not None:
        files = render_files(args.proxy, options, args.output.resolve())
        _write(args.output, files)
        for name in files:
            sys.stderr.write(f"# wrote {args.output / name}\n")
    else:
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
