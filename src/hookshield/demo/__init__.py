"""``hookshield demo``: the whole story in one command.

A throwaway PKI, the demo Django project served by ``hookshield serve`` over mutual TLS, the
same payment webhook naive and shielded, both scanned, side by side. Nothing to configure; the
server process never outlives the demo (unless ``--keep``, until Ctrl-C).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.table import Table

from hookshield.core.signatures import new_hmac_secret
from hookshield.demo.processes import free_port, serving
from hookshield.pki.store import CaDirectory
from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.model import Category, Report, Severity
from hookshield.scanner.profiles import ClientFiles
from hookshield.scanner.registry import MASKED

__all__ = ["DemoFiles", "prepare", "run_demo", "served"]

SPIFFE_ID = "spiffe://demo.hookshield.test/payments-gateway"
STARTUP_SECONDS = 20.0


@dataclass(frozen=True)
class DemoFiles:
    directory: Path
    signing_secret: str

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def client(self) -> ClientFiles:
        return ClientFiles(self.path("payments-gateway.pem"), self.path("payments-gateway.key"))

    @property
    def other(self) -> ClientFiles:
        return ClientFiles(self.path("reporting.pem"), self.path("reporting.key"))


def default_directory() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "hookshield" / "demo"


def prepare(directory: Path) -> DemoFiles:
    """A fresh CA, the payments gateway's and a reporting service's certificates, a server one."""
    ca = CaDirectory(directory)
    ca.init("hookshield demo CA", days=30, force=True)
    ca.issue("payments-gateway", spiffe_id=SPIFFE_ID, days=7)
    ca.issue("reporting", spiffe_id="spiffe://demo.hookshield.test/reporting", days=7)
    ca.issue("server", server_hosts=("127.0.0.1", "localhost"), days=7)
    secret = new_hmac_secret()
    (directory / "signing-secret.txt").write_text(secret + "\n")
    (directory / "signing-secret.txt").chmod(0o600)
    return DemoFiles(directory, secret)


@contextmanager
def served(files: DemoFiles, port: int | None = None) -> Iterator[int]:
    """Run ``hookshield serve`` on the demo project; always stopped on the way out."""
    port = port or free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hookshield.demo.project.settings",
        "HOOKSHIELD_DEMO_DIR": str(files.directory),
        "HOOKSHIELD_DEMO_SECRET_KEY": secrets.token_urlsafe(32),
        "HOOKSHIELD_DEMO_SIGNING_SECRET": files.signing_secret,
    }
    log = files.path("server.log")
    command = [
        sys.executable,
        "-m",
        "hookshield",
        "serve",
        "hookshield.demo.project.asgi:application",
        "--cert",
        str(files.path("server.pem")),
        "--key",
        str(files.path("server.key")),
        "--client-ca",
        str(files.path("ca.pem")),
        "--client-auth",
        "optional",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with serving(
        command,
        output=log,
        ports=[port],
        within=STARTUP_SECONDS,
        what="hookshield serve",
        env=env,
        preexec_fn=_die_with_parent,
    ):
        yield port


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the demo dies, even by SIGKILL (no orphan left)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _scan_both(files: DemoFiles, port: int) -> tuple[Report, Report]:
    def config(path: str) -> ScanConfig:
        return ScanConfig(
            url=f"https://127.0.0.1:{port}/{path}/payments/",
            legit=files.client,
            mint_ca=ClientFiles(files.path("ca.pem"), files.path("ca.key")),
            ca=str(files.path("ca.pem")),
            signing_secret=files.signing_secret,
            burst=60,
        )

    naive, shielded = await asyncio.gather(run_scan(config("naive")), run_scan(config("shielded")))
    return naive, shielded


def _side_by_side(naive: Report, shielded: Report) -> Table:
    table = Table(title="The same payment webhook, scanned", header_style="bold")
    table.add_column("")
    table.add_column("naive view", justify="right")
    table.add_column('@webhook("payments")', justify="right")

    def count(report: Report, severity: Severity) -> str:
        return str(sum(1 for r in report.results if r.findings and r.severity is severity))

    def grade(report: Report) -> str:
        colour = "green" if report.grade == "A" else "red" if report.grade == "F" else "yellow"
        return f"[bold {colour}]{report.grade}[/]"

    table.add_row("grade", grade(naive), grade(shielded))
    table.add_row("score", f"{naive.score}/100", f"{shielded.score}/100")
    table.add_row(
        "checks run",
        *(f"{r.checks_run}/{r.checks_applicable}" for r in (naive, shielded)),
    )
    for severity in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW):
        table.add_row(f"{severity} findings", count(naive, severity), count(shielded, severity))
    for category in Category:
        values = [r.categories.get(category) for r in (naive, shielded)]
        table.add_row(
            f"  {category}",
            *("-" if v is None or v.score is None else str(v.score) for v in values),
        )
    table.add_row("requests", str(naive.requests_sent), str(shielded.requests_sent))
    table.add_row("time", f"{naive.duration_s:.1f} s", f"{shielded.duration_s:.1f} s")
    return table


def _by_hand(files: DemoFiles, port: int) -> str:
    base = f"https://127.0.0.1:{port}"
    send = f"{_hookshield()} send"
    tls = f"--ca {files.path('ca.pem')}"
    me = f"--cert {files.client.cert} --key {files.client.key}"
    other = f"--cert {files.other.cert} --key {files.other.key}"
    data = """--data '{"type": "payment.succeeded", "amount": 1200}'"""
    secret = f"--secret-file {files.path('signing-secret.txt')}"
    return f"""Try it by hand (run with --keep so the server stays up):
  # naive: anyone, no certificate, anything goes
  {send} {base}/naive/payments/ {tls} {data}
  # shielded, no certificate: 401 client_cert_missing
  {send} {base}/shielded/payments/ {tls} {data}
  # shielded, another valid service: 403 identity_not_allowed
  {send} {base}/shielded/payments/ {tls} {other} {data}
  # shielded, the payments gateway, signed: 200; the same delivery again: 409 delivery_replayed
  {send} {base}/shielded/payments/ {tls} {me} {secret} {data} --replay
Files (CA, certificates, signing secret, decisions.log): {files.directory}
"""


def _hookshield() -> str:
    """How to run this installation's command from a shell: by name when that finds it."""
    script = Path(sys.executable).parent / "hookshield"
    if shutil.which("hookshield") == str(script):
        return "hookshield"
    return str(script) if script.exists() else f"{sys.executable} -m hookshield"


def _print_naive_summary(console: Console, naive: Report) -> None:
    worst = [f"{r.id}" for r in naive.results if r.findings and r.severity.rank >= 3]
    console.print(
        "[bold]What the naive view let through[/] (critical and high): " + ", ".join(worst),
        soft_wrap=True,
    )
    masked = [r.id for r in naive.results if r.reason.startswith(MASKED)]
    if masked:
        console.print(
            "[bold]Not provable on the naive view[/] (anything gets in without a "
            "certificate, which masks what certificates could show): " + ", ".join(masked),
            soft_wrap=True,
        )


def run_demo(
    *,
    keep: bool = False,
    directory: Path | None = None,
    port: int | None = None,
    out: TextIO | None = None,
) -> int:
    console = Console(file=out or sys.stdout, highlight=False)
    started = time.monotonic()
    files = prepare(directory or default_directory())
    console.print(
        f"[bold]hookshield demo[/]: a throwaway PKI in {files.directory}, the demo "
        "project on hookshield serve (mutual TLS), two scans."
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # `kill` cleans up like Ctrl-C
    with served(files, port) as bound:
        naive, shielded = asyncio.run(_scan_both(files, bound))
        console.print(_side_by_side(naive, shielded))
        _print_naive_summary(console, naive)
        console.print(_by_hand(files, bound), soft_wrap=True, markup=False)
        console.print(f"Done in {time.monotonic() - started:.1f} s.")
    if keep:
        # A fresh server: the scans' burst used up the gateway's rate for this minute.
        with served(files, bound):
            console.print(f"Serving on https://127.0.0.1:{bound}/ until Ctrl-C.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                console.print("Stopped.")
    return 0
