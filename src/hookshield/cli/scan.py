"""``hookshield scan``: parse, build a ScanConfig per target, run, render, map to an exit code."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hookshield.cli.exit_codes import ExitCode
from hookshield.cli.headers import header
from hookshield.cli.secret_file import first_line_secret
from hookshield.core.certs import load_chain
from hookshield.core.errors import HookshieldError
from hookshield.core.redact import without_credentials
from hookshield.pki import CertificateAuthority
from hookshield.scanner.context import ScanConfig
from hookshield.scanner.engine import Unreachable, run_scan, selected_checks
from hookshield.scanner.formats import OutputFormat
from hookshield.scanner.formats.many import render_many
from hookshield.scanner.model import CheckResult, Report, Severity
from hookshield.scanner.profiles import ClientFiles
from hookshield.scanner.signers import DEFAULT_HMAC_HEADER, Scheme

__all__ = ["add_parser", "run"]

EPILOG = """\
exit codes: 0 passed, 1 below --threshold or a finding at --fail-on or above, 2 usage or
configuration error (bad flag, unreadable certificate), 3 a target could not be reached at all,
4 the scan is incomplete (the baseline delivery was refused, or coverage below --min-coverage).

examples:
  hookshield scan https://hooks.example.test/payments/ --cert client.pem --key client.key \\
      --ca server-ca.pem --mint-ca clients-ca.pem --mint-key clients-ca.key \\
      --signing-secret whsec_... --threshold 90
  hookshield scan --targets targets.yaml --format sarif --output hookshield.sarif
  # a receiver with its own signature, paced, without the rate-limit burst:
  hookshield scan https://hooks.example.test/github/ --cert client.pem --key client.key \
      --signature-scheme github --signing-secret "$GITHUB_WEBHOOK_SECRET" \
      --header 'X-GitHub-Event: push' --rate 5/s --skip rate.no-limit,rate.no-retry-after
  # only the identity checks, basic auth in the URL (shown as *** in every report):
  hookshield scan 'https://user:password@hooks.example.test/mail/' --cert client.pem \
      --key client.key --checks authz.foreign-identity,authz.identity-confusion
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scan",
        help="scan a webhook endpoint for abuse paths (mTLS-aware)",
        description="Scan webhook endpoints from outside: client certificates (legitimate, "
        "foreign, forged, expired, look-alike), forged certificate headers, hostile bodies, "
        "rate limits, signatures and replay, data exposure and TLS. Offline; for terminals and CI.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", nargs="?", help="the webhook URL (https://..., or http:// if you insist)")
    p.add_argument(
        "--targets",
        type=Path,
        metavar="FILE",
        help="several targets: one URL per line, or a YAML/JSON list of objects with "
        "url and any of cert, key, foreign_cert, foreign_key, mint_ca, mint_key, ca, "
        "signing_secret, signing_secret_file, payload (paths relative to the file)",
    )
    identity = p.add_argument_group("identities")
    identity.add_argument("--cert", type=Path, help="the legitimate client certificate (PEM)")
    identity.add_argument("--key", type=Path, help="its private key (PEM)")
    identity.add_argument(
        "--foreign-cert", type=Path, help="a valid certificate of another identity"
    )
    identity.add_argument("--foreign-key", type=Path)
    identity.add_argument(
        "--mint-ca",
        type=Path,
        help="the client certificates' issuing CA (test deployments only): "
        "mints expired, foreign and look-alike certificates",
    )
    identity.add_argument("--mint-key", type=Path)
    identity.add_argument("--ca", type=Path, help="CA bundle that signs the server certificate")
    delivery = p.add_argument_group("deliveries")
    secrets = delivery.add_mutually_exclusive_group()
    secrets.add_argument(
        "--signing-secret",
        metavar="SECRET",
        help="the endpoint's signing secret (Standard Webhooks: whsec_..., or a whsk_... Ed25519 "
        "private key): sign deliveries, run replay.*; visible to other local users in the "
        "process list, prefer --signing-secret-file",
    )
    secrets.add_argument(
        "--signing-secret-file",
        type=Path,
        metavar="FILE",
        help="--signing-secret from the first line of FILE (what hookshield secret --output "
        "writes)",
    )
    delivery.add_argument(
        "--signature-scheme",
        type=Scheme,
        choices=list(Scheme),
        default=Scheme.STANDARD,
        help="how deliveries are signed with --signing-secret (standard): Standard Webhooks, "
        "GitHub X-Hub-Signature-256, Stripe-Signature, Slack v0, or an HMAC-SHA256 of the body "
        "in hex (hmac, see --signature-header)",
    )
    delivery.add_argument(
        "--signature-header",
        default=DEFAULT_HMAC_HEADER,
        metavar="NAME",
        help=f"the header of --signature-scheme hmac ({DEFAULT_HMAC_HEADER})",
    )
    delivery.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=[],
        type=header,
        metavar="'NAME: VALUE'",
        help="send this header with every request (repeatable): a receiver's own "
        "authentication or event name; values never appear in a report",
    )
    delivery.add_argument(
        "--payload",
        type=Path,
        help="a legitimate payload (default: a small JSON event with a canary)",
    )
    limits = p.add_argument_group("safety")
    limits.add_argument("--budget", type=_count, default=500, help="most requests per target (500)")
    limits.add_argument("--burst", type=_count, default=120, help="rate-limit burst size (120)")
    limits.add_argument("--timeout", type=_seconds, default=10.0, help="per request, seconds (10)")
    limits.add_argument("--concurrency", type=_count, default=4, help="requests in flight (4)")
    limits.add_argument(
        "--max-duration",
        type=_seconds,
        metavar="SECONDS",
        help="hard cap on a scan's wall time; checks not reached are skipped",
    )
    limits.add_argument(
        "--rate",
        type=_rate,
        metavar="N/s",
        help="pace every request, probes and burst included, to at most N per second "
        "(default: unpaced, --concurrency in flight)",
    )
    limits.add_argument(
        "--checks", metavar="IDS", help="comma-separated check ids to run (default: all)"
    )
    limits.add_argument(
        "--skip", metavar="IDS", help="comma-separated check ids not to run (e.g. rate.no-limit)"
    )
    report = p.add_argument_group("report")
    report.add_argument(
        "--format", type=OutputFormat, choices=list(OutputFormat), default=OutputFormat.PRETTY
    )
    report.add_argument("--output", type=Path, help="write the report here instead of stdout")
    report.add_argument("--threshold", type=int, metavar="N", help="exit 1 when a score is below N")
    report.add_argument(
        "--min-coverage",
        type=_ratio,
        default=1.0,
        metavar="RATIO",
        help="below this share of checks run (0 to 1, default 1: every applicable check), the "
        "scan is incomplete: no grade, exit 4",
    )
    report.add_argument(
        "--fail-on",
        type=Severity,
        choices=list(Severity),
        metavar="SEVERITY",
        help="exit 1 when a finding is at this severity or above",
    )
    report.add_argument(
        "--sarif-location",
        metavar="PATH",
        help="repository file SARIF results point at (default: the --targets "
        "file, else hookshield-scan.txt)",
    )
    report.add_argument("--list-checks", action="store_true", help="list the check ids and exit")
    p.set_defaults(handler=run)


Number = TypeVar("Number", int, float)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not {text!r}")
    return value


def positive(kind: Callable[[str], Number]) -> Callable[[str], Number]:
    """An argparse type for a number above zero (a safety limit of 0 would never finish)."""

    def parse(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, not {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


_count, _seconds = positive(int), positive(float)


class UsageError(Exception):
    pass


def _pair(
    cert: Path | None, key: Path | None, what: str, *, authority: bool = False
) -> ClientFiles | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError(f"{what}: give both the certificate and the key")
    for path in (cert, key):
        if not path.is_file():
            raise UsageError(f"{what}: cannot read {path}")
    # Loaded now as the scan will load them, so a bad file is a usage error (exit 2) rather than
    # a crash or an "unreachable" target halfway through the scan.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key)  # parses, and matches
        if authority:
            CertificateAuthority.load(cert, key)
        else:
            load_chain(cert.read_bytes(), str(cert))
    except (OSError, ValueError, HookshieldError) as exc:
        raise UsageError(f"{what}: {exc}") from exc
    return ClientFiles(cert, key)


def _rate(text: str) -> float:
    number = text.strip().removesuffix("/s")
    return positive(float)(number)


def _signer(config: ScanConfig) -> ScanConfig:
    try:
        config.signer()  # what every signed probe does with the secret
    except ValueError as exc:
        raise UsageError(f"--signing-secret: {exc}") from exc
    return config


def _config(
    args: argparse.Namespace,
    url: str,
    overrides: dict[str, Any],
    base: Path,
    checks: tuple[str, ...],
) -> ScanConfig:
    def path(name: str) -> Path | None:
        value = overrides.get(name)
        return (base / value) if isinstance(value, str) else getattr(args, name)

    if urlsplit(url).scheme not in ("https", "http") or not urlsplit(url).hostname:
        raise UsageError(f"not an http(s) URL: {without_credentials(url, '***')!r}")
    payload_path = path("payload")
    try:
        payload = payload_path.read_bytes() if payload_path else None
    except OSError as exc:
        raise UsageError(f"--payload: {exc}") from exc
    ca = path("ca")
    if ca is not None and not ca.is_file():
        raise UsageError(f"--ca: cannot read {ca}")
    return _signer(
        ScanConfig(
            url=url,
            legit=_pair(path("cert"), path("key"), "--cert/--key"),
            foreign=_pair(
                path("foreign_cert"), path("foreign_key"), "--foreign-cert/--foreign-key"
            ),
            mint_ca=_pair(
                path("mint_ca"), path("mint_key"), "--mint-ca/--mint-key", authority=True
            ),
            ca=str(ca) if ca else None,
            signing_secret=_signing_secret(args, overrides, base),
            signature_scheme=args.signature_scheme,
            signature_header=args.signature_header,
            headers=tuple(args.headers),
            rate=args.rate,
            payload=payload,
            budget=args.budget,
            burst=args.burst,
            timeout=args.timeout,
            concurrency=args.concurrency,
            max_duration=args.max_duration,
            checks=checks,
            min_coverage=args.min_coverage,
        )
    )


def _signing_secret(args: argparse.Namespace, overrides: dict[str, Any], base: Path) -> str | None:
    """A --targets entry's own secret (given, or in a file) before the command line's."""
    if "signing_secret" in overrides:
        if "signing_secret_file" in overrides:
            raise UsageError(
                f"--targets {args.targets}: give signing_secret or signing_secret_file"
            )
        return str(overrides["signing_secret"])
    option, path = "--targets signing_secret_file", overrides.get("signing_secret_file")
    if path is not None:
        path = base / path
    elif args.signing_secret_file is not None:
        option, path = "--signing-secret-file", args.signing_secret_file
    if path is None:
        secret: str | None = args.signing_secret
        return secret
    try:
        return first_line_secret(path)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from exc


def _ids(spec: str | None) -> tuple[str, ...]:
    ids = tuple(c.strip() for c in (spec or "").split(",") if c.strip())
    try:
        selected_checks(ids)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return ids


def _check_ids(checks: str | None, skip: str | None) -> tuple[str, ...]:
    """--checks minus --skip; empty means every check."""
    chosen, skipped = _ids(checks), set(_ids(skip))
    if not skipped:
        return chosen
    kept = tuple(c.id for c in selected_checks(chosen) if c.id not in skipped)
    if not kept:
        raise UsageError("--skip leaves no check to run")
    return kept


def _structured_entries(targets: Path, text: str) -> list[Any]:
    try:
        loaded = json.loads(text) if targets.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"--targets {targets}: {exc}") from exc
    entries: list[Any] = loaded if isinstance(loaded, list) else []
    if not entries:
        raise UsageError(f"--targets {targets}: expected a non-empty list")
    return entries


def _entries(targets: Path) -> list[Any]:
    """The --targets file's entries: URLs (plain text) or objects (YAML/JSON), unchecked."""
    try:
        text = targets.read_text()
    except OSError as exc:
        raise UsageError(f"--targets: {exc}") from exc
    if targets.suffix in (".yaml", ".yml", ".json"):
        return _structured_entries(targets, text)
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


# What an entry of a YAML/JSON --targets file may set, each a string.
_ENTRY_KEYS = frozenset(
    {
        "url",
        "cert",
        "key",
        "foreign_cert",
        "foreign_key",
        "mint_ca",
        "mint_key",
        "ca",
        "signing_secret",
        "signing_secret_file",
        "payload",
    }
)


def _entry_config(
    args: argparse.Namespace, entry: Any, base: Path, checks: tuple[str, ...]
) -> ScanConfig:
    if isinstance(entry, str):
        return _config(args, entry, {}, base, checks)
    if not (isinstance(entry, dict) and isinstance(entry.get("url"), str)):
        raise UsageError(f"--targets {args.targets}: each entry needs a url")
    # A misspelt key would scan without what it names (unsigned, or with the command line's
    # certificate): refused, as is a value that is not text (never shown: it may be a secret).
    unknown = sorted(str(name) for name in entry if name not in _ENTRY_KEYS)
    if unknown:
        known = ", ".join(sorted(_ENTRY_KEYS))
        raise UsageError(f"--targets {args.targets}: unknown keys {unknown} (known: {known})")
    for name, value in entry.items():
        if not isinstance(value, str):
            raise UsageError(f"--targets {args.targets}: {name} must be a string")
    return _config(args, entry["url"], entry, base, checks)


def _writable(output: Path | None) -> None:
    """Refuse an --output the report could not be written to before the scan spends requests."""
    if output is None:
        return
    if output.exists():  # a file, or /dev/stdout: what matters is whether it takes writes
        writable = not output.is_dir() and os.access(output, os.W_OK)
    else:
        writable = output.parent.is_dir() and os.access(output.parent, os.W_OK)
    if not writable:
        raise UsageError(f"--output: cannot write {output}")


def _targets(args: argparse.Namespace) -> list[ScanConfig]:
    # --checks is the same for every target: parsed and checked once.
    checks = _check_ids(args.checks, args.skip)
    if args.targets is None:
        if not args.url:
            raise UsageError("give a URL or --targets FILE")
        return [_config(args, args.url, {}, Path.cwd(), checks)]
    base = args.targets.parent
    return [_entry_config(args, entry, base, checks) for entry in _entries(args.targets)]


class _TargetProgress:
    """One target's task on a rich progress bar (stderr)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def scan_started(self, target: str, checks: int) -> None:
        self.target = target
        self.task = self.progress.add_task(target, total=checks)

    def check_done(self, result: CheckResult) -> None:
        self.progress.advance(self.task)

    def notice(self, message: str) -> None:
        self.progress.console.print(f"{self.target}: {message}", highlight=False, markup=False)


async def _scan_all(
    configs: list[ScanConfig], progress: Progress | None
) -> list[Report | Unreachable]:
    async def one(config: ScanConfig) -> Report | Unreachable:
        try:
            return await run_scan(config, _TargetProgress(progress) if progress else None)
        except Unreachable as exc:
            return exc

    return list(await asyncio.gather(*(one(c) for c in configs)))


def run(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if args.list_checks:
        return _list_checks(stdout)
    try:
        configs = _targets(args)
        _writable(args.output)
    except UsageError as exc:
        stderr.write(f"hookshield scan: {exc}\n")
        return ExitCode.USAGE
    interactive = stderr.isatty() and not args.format.machine_readable
    outcomes = _run_scans(configs, stderr if interactive else None)
    reports = _reports(outcomes, stderr)
    unreachable = [str(o) for o in outcomes if isinstance(o, Unreachable)]
    try:
        color = interactive and args.output is None
        _write_reports(reports, unreachable, args, stdout, stderr, color=color)
    except OSError as exc:  # checked before the scan, but a disk can fill meanwhile
        stderr.write(f"hookshield scan: --output: {exc}\n")
        return ExitCode.USAGE
    return _exit_code(reports, len(reports) < len(outcomes), args)


def _list_checks(stdout: TextIO) -> int:
    for cls in selected_checks():
        stdout.write(f"{cls.id:34} {cls.severity:8} {cls.title}\n")
    return ExitCode.OK


def _run_scans(configs: list[ScanConfig], progress_to: TextIO | None) -> list[Report | Unreachable]:
    """Scan every target; with a terminal to draw on, under a transient progress bar."""
    if progress_to is None:
        return asyncio.run(_scan_all(configs, None))
    progress = Progress(
        TextColumn("{task.description}", markup=False),  # a target's URL, as given
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(file=progress_to),
        transient=True,
    )
    with progress:
        return asyncio.run(_scan_all(configs, progress))


def _reports(outcomes: list[Report | Unreachable], stderr: TextIO) -> list[Report]:
    """The reports; each unreachable target is named on stderr (and in the outputs of
    several targets)."""
    reports = [o for o in outcomes if isinstance(o, Report)]
    for failure in (o for o in outcomes if isinstance(o, Unreachable)):
        stderr.write(f"hookshield scan: unreachable: {failure}\n")
    return reports


def _write_reports(
    reports: list[Report],
    unreachable: list[str],
    args: argparse.Namespace,
    stdout: TextIO,
    stderr: TextIO,
    *,
    color: bool,
) -> None:
    location = args.sarif_location or (str(args.targets) if args.targets else "hookshield-scan.txt")
    text = render_many(
        reports, args.format, color=color, sarif_location=location, unreachable=unreachable
    )
    if not text:  # nothing was reached: an earlier run's report must not pass for this one's
        if args.output and args.output.is_file():
            args.output.unlink()
            stderr.write(f"hookshield scan: no report: removed the earlier {args.output}\n")
    elif args.output:
        args.output.write_text(text)
    else:
        stdout.write(text)


def _exit_code(reports: list[Report], unreachable: bool, args: argparse.Namespace) -> int:
    if unreachable:
        return ExitCode.UNREACHABLE
    for report in reports:
        if args.threshold is not None and report.score < args.threshold:
            return ExitCode.BELOW_THRESHOLD
        worst = report.worst
        if args.fail_on is not None and worst is not None and worst.rank >= args.fail_on.rank:
            return ExitCode.BELOW_THRESHOLD
    # A failing gate says more than "incomplete"; an untested endpoint never passes.
    if any(report.incomplete for report in reports):
        return ExitCode.INCOMPLETE
    return ExitCode.OK
