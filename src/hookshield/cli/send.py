"""``hookshield send``: one webhook delivery over mutual TLS, signed per Standard Webhooks.

Prints what was sent (never the key), the answer's status and its body (JSON pretty-printed);
``--replay`` sends the very same bytes again, so the guard's replay refusal shows.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from hookshield import __version__
from hookshield.cli.exit_codes import ExitCode
from hookshield.cli.headers import header
from hookshield.cli.secret_file import first_line_secret
from hookshield.core.certs import load_chain
from hookshield.core.errors import HookshieldError
from hookshield.core.identity import ClientIdentity
from hookshield.core.redact import without_credentials
from hookshield.core.signatures import signed_headers

__all__ = ["add_parser", "run"]

DEFAULT_BODY = b'{"type": "hookshield.test"}'
MAX_SHOWN = 4096  # characters of a body that is not JSON (a debug page can be long)
# What a hostile answer could steer a terminal with (escape sequences, carriage returns).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

EPILOG = """\
exit codes: 0 accepted (2xx) and, with --replay, the repetition refused; 2 usage error (a bad
flag, an unreadable certificate, key or file); 3 no answer (connection refused, TLS handshake
failed, timeout); 5 answered with a status other than 2xx; 6 with --replay, the repetition was
accepted as well.

examples:
  hookshield secret --output signing-secret.txt      # then put it in SIGNING_SECRETS
  hookshield send https://127.0.0.1:8443/hooks/payments/ --ca ca/ca.pem \\
      --cert ca/payments.pem --key ca/payments.key \\
      --secret-file signing-secret.txt --data '{"type": "payment.succeeded"}' --replay
"""


class UsageError(Exception):
    pass


class NoAnswer(Exception):
    pass


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "send",
        help="send one webhook delivery (mTLS, Standard Webhooks signature) and print the answer",
        description="Send one webhook delivery: POST over mutual TLS, signed per Standard "
        "Webhooks when a key is given (a fresh webhook-id and timestamp each run), and print the "
        "status and the answer (JSON pretty-printed). The key is never printed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="the webhook URL (https://...)")
    tls = p.add_argument_group("mutual TLS")
    tls.add_argument("--cert", type=Path, help="the client certificate (PEM; its chain may follow)")
    tls.add_argument("--key", type=Path, help="its private key (PEM)")
    tls.add_argument(
        "--ca",
        type=Path,
        help="CA bundle that signs the server certificate (default: the system's)",
    )
    signing = p.add_argument_group("signature")
    keys = signing.add_mutually_exclusive_group()
    keys.add_argument(
        "--secret",
        metavar="KEY",
        help="sign with this key: whsec_... (HMAC, v1) or whsk_... (Ed25519 private, v1a); "
        "visible to other local users in the process list, prefer --secret-file",
    )
    keys.add_argument(
        "--secret-file",
        type=Path,
        metavar="FILE",
        help="sign with the key on the first line of FILE (what hookshield secret --output writes)",
    )
    delivery = p.add_argument_group("delivery")
    bodies = delivery.add_mutually_exclusive_group()
    bodies.add_argument(
        "--data", metavar="TEXT", help=f"the body, sent as is (default: {DEFAULT_BODY.decode()})"
    )
    bodies.add_argument("--file", type=Path, metavar="FILE", help="the body from FILE ('-': stdin)")
    delivery.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra header (repeatable); it replaces one the command would send, "
        "Content-Type (application/json), User-Agent and the webhook-* headers included",
    )
    delivery.add_argument(
        "--replay",
        action="store_true",
        help="send the same delivery again, byte for byte, and show both answers",
    )
    delivery.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="SECONDS", help="per request (10)"
    )
    p.set_defaults(handler=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, not {text!r}")
    return value


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    signed: str  # how: "unsigned", "signed (v1), webhook-id ..."
    certificate: bool  # whether a client certificate is presented


def run(args: argparse.Namespace) -> int:
    try:
        context, who = _tls(args)
        delivery = _delivery(args)
    except UsageError as exc:
        sys.stderr.write(f"hookshield send: {exc}\n")
        return ExitCode.USAGE
    sys.stdout.write(
        f"POST {without_credentials(delivery.url, '***')} {who}, {delivery.signed}, "
        f"{len(delivery.body)} bytes\n"
    )
    try:
        with httpx.Client(verify=context, timeout=args.timeout) as client:
            first = _send(client, delivery)
            _show(first)
            if not args.replay:
                return ExitCode.OK if first.is_success else ExitCode.REFUSED
            sys.stdout.write("POST again: the same headers and body\n")
            second = _send(client, delivery)
            _show(second)
    except NoAnswer as exc:
        sys.stderr.write(f"hookshield send: {exc}\n")
        return ExitCode.UNREACHABLE
    if not first.is_success:
        return ExitCode.REFUSED
    return ExitCode.REPLAY_ACCEPTED if second.is_success else ExitCode.OK


def _tls(args: argparse.Namespace) -> tuple[ssl.SSLContext, str]:
    """The client's TLS context, and who it presents itself as ("as ..." or "without ...")."""
    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together")
    try:
        context = ssl.create_default_context(cafile=args.ca)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--ca {args.ca}: {_reason(exc)}") from exc
    if args.cert is None:
        return context, "without a client certificate"
    for option, path in (("--cert", args.cert), ("--key", args.key)):
        if not path.is_file():
            raise UsageError(f"{option}: no such file: {path}")
    try:
        context.load_cert_chain(args.cert, args.key)  # parses both, and checks they match
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--cert {args.cert} / --key {args.key}: {_reason(exc)}") from exc
    try:
        leaf = load_chain(args.cert.read_bytes(), str(args.cert))[0]
        return context, f"as {ClientIdentity.from_certificate(leaf).name}"
    except (OSError, ValueError, HookshieldError):  # a label only: TLS has read the file
        return context, f"as {args.cert}"


def _delivery(args: argparse.Namespace) -> Delivery:
    url = args.url
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise UsageError(f"not an http(s) URL: {without_credentials(url, '***')!r}")
    body = _body(args)
    headers = {"Content-Type": "application/json", "User-Agent": f"hookshield/{__version__}"}
    signed = "unsigned"
    key = _key(args)
    if key is not None:
        try:
            headers |= signed_headers(key, body)
        except ValueError as exc:
            option = "--secret" if args.secret_file is None else "--secret-file"
            raise UsageError(f"{option}: {exc}") from exc
        version = "v1a" if key.startswith("whsk_") else "v1"
        signed = f"signed ({version}), webhook-id {headers['webhook-id']}"
    for name, value in _extra_headers(args.header):
        for existing in [h for h in headers if h.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    return Delivery(url, body, headers, signed, certificate=args.cert is not None)


def _extra_headers(values: Sequence[str]) -> list[tuple[str, str]]:
    try:
        return [header(value) for value in values]
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--header: {exc}") from None


def _body(args: argparse.Namespace) -> bytes:
    if args.data is not None:
        return str(args.data).encode()
    if args.file is None:
        return DEFAULT_BODY
    if str(args.file) == "-":
        return sys.stdin.buffer.read()
    try:
        return bytes(args.file.read_bytes())
    except OSError as exc:
        raise UsageError(f"--file: {_reason(exc)}: {args.file}") from exc


def _key(args: argparse.Namespace) -> str | None:
    if args.secret_file is None:
        secret: str | None = args.secret
        if secret is not None and not secret.strip():
            raise UsageError("--secret is empty (an unset variable?)")
        return secret.strip() if secret is not None else None
    try:
        return first_line_secret(Path(args.secret_file))
    except ValueError as exc:
        raise UsageError(f"--secret-file: {exc}") from exc


def _send(client: httpx.Client, delivery: Delivery) -> httpx.Response:
    try:
        return client.post(delivery.url, content=delivery.body, headers=delivery.headers)
    except httpx.TransportError as exc:
        message = _no_answer(delivery.url, exc)
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            # A TLS 1.3 client counts the handshake as done before the server has checked its
            # certificate; a server that refuses it (or its absence) then closes the connection.
            message += (
                " (a client certificate refused at the handshake?)"
                if delivery.certificate
                else " (a client certificate required? --cert, --key)"
            )
        raise NoAnswer(message) from exc


def _no_answer(url: str, exc: httpx.TransportError) -> str:
    """One line: why there is no answer, with the TLS error's reason when there is one."""
    where = without_credentials(url, "***")
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {where} within the timeout"
    if isinstance(cause, ssl.SSLError):
        return f"TLS with {where} failed: {_reason(cause)}"
    detail = _reason(cause or exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {where}: {detail}"
    return f"no answer from {where}: {detail}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server certificate does not verify: {exc.verify_message} (--ca?)"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _show(response: httpx.Response) -> None:
    lines = [f"-> {response.status_code} {response.reason_phrase}"]
    lines += [
        f"   {name}: {response.headers[name]}"
        for name in ("Location", "Retry-After")
        if name in response.headers
    ]
    try:
        answer = json.dumps(json.loads(response.content), indent=2, ensure_ascii=False)
    except ValueError:
        answer = response.text
        if len(answer) > MAX_SHOWN:
            answer = f"{answer[:MAX_SHOWN]}\n... ({len(answer) - MAX_SHOWN} more characters)"
    if answer.strip():
        lines.append(answer.strip("\n"))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))
    sys.stdout.flush()
