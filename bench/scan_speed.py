"""Wall time and requests of a full scan against one local endpoint, and the burst's pace.

    .venv/bin/python bench/scan_speed.py

Scans the hardened endpoint (nginx + the guard with every control) and the naive one (no guard),
with every input given (legitimate certificate, issuing CA, server CA, signing secret).
Targets from the issue: at most 5 s and 400 requests per scan on this machine.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.profiles import ClientFiles
from tests.conftest import ALLOWED, guard_config, make_pki
from tests.integration.servers import NginxServer, gunicorn_app, nginx

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test-vector secret


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pki = make_pki(base / "pki")
        ca_key = base / "ca.key"
        ca_key.write_bytes(
            pki.root.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
        config = guard_config(
            pki,
            REPLAY_STORAGE="memory://",
            ENDPOINTS={
                "strict": {"ALLOW": [ALLOWED], "RATE": "40/minute", "SIGNING_SECRETS": [SECRET]},
            },
        )
        cert, key = pki.files("server")
        with (
            gunicorn_app(base / "hardened", config, workers=2) as hardened,
            gunicorn_app(base / "naive", config, workers=2) as naive,
            nginx(
                base / "nginx",
                cert,
                key,
                pki.ca_file,
                [NginxServer(hardened.port), NginxServer(naive.port, max_body="16m")],
            ) as ports,
        ):
            rows = []
            for name, port, path in (
                ("hardened (guard)", ports[0], "strict"),
                ("naive (no guard)", ports[1], "naive"),
            ):
                report = asyncio.run(
                    run_scan(
                        ScanConfig(
                            url=f"https://127.0.0.1:{port}/hooks/{path}/",
                            legit=ClientFiles(*pki.files("allowed")),
                            mint_ca=ClientFiles(pki.ca_file, ca_key),
                            ca=str(pki.ca_file),
                            signing_secret=SECRET,
                        )
                    )
                )
                burst = report.burst
                pace = f"{burst[0] / burst[1]:.0f}" if burst and burst[1] else "-"
                rows.append((name, report.duration_s, report.requests_sent, pace, report.grade))
    print("| target | wall time (s) | requests | burst requests/s | grade |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, wall, requests, pace, grade in rows:
        print(f"| {name} | {wall:.2f} | {requests} | {pace} | {grade} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
