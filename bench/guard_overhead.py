"""The guard's in-process cost per request, against the same view undecorated, in one run.

    .venv/bin/python bench/guard_overhead.py [--requests N] [--repeat R]

Each scenario calls a Django view N times with a request built once (as Django hands a view its
request); a scenario's figure is the median of R such runs, per request. "Added" is the guard's
cost over the undecorated view. Nothing here asserts a time: the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
from django.conf import settings

ALLOWED = "spiffe://corp.example/payments-gateway"


def configure(directory: Path) -> dict[str, Any]:
    from hookshield.pki import CertificateAuthority

    root = CertificateAuthority.create("bench root")
    (directory / "ca.pem").write_bytes(root.cert_pem)
    certs = {
        "allowed": root.issue_client(spiffe_id=ALLOWED),
        "allowed_2": root.issue_client(spiffe_id=ALLOWED),
        "other": root.issue_client(spiffe_id="spiffe://corp.example/other"),
    }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",  # noqa: S106
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["hookshield.django"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        LOGGING_CONFIG=None,
        HOOKSHIELD={
            "CERT_SOURCE": "nginx",
            "TRUSTED_PROXIES": ["127.0.0.1/32"],
            "TRUST_ANCHORS": [str(directory / "ca.pem")],
            "ENDPOINTS": {"payments": {"ALLOW": [ALLOWED]}},
        },
    )
    django.setup()
    # Decision lines are built as in production (INFO), then dropped: the guard's cost, not the
    # cost of the log handler's I/O.
    logger = logging.getLogger("hookshield")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return certs


urlpatterns: list[Any] = []


def per_request(call: Callable[[], Any], requests: int, repeat: int) -> float:
    """Median over ``repeat`` runs of the time per call, in microseconds."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(requests):
            call()
        runs.append((time.perf_counter_ns() - start) / requests / 1000)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        certs = configure(Path(tmp))
        from django.http import HttpResponse
        from django.test import RequestFactory, override_settings

        from hookshield.django import webhook
        from hookshield.pki import encodings

        def view(request: Any) -> HttpResponse:
            return HttpResponse(status=204)

        guarded = webhook("payments")(view)
        factory = RequestFactory()

        def request(cert: str | None, peer: str = "127.0.0.1") -> Any:
            headers = {}
            if cert is not None:
                headers = {
                    "X-SSL-Client-Cert": encodings.nginx_escaped(certs[cert].certificate),
                    "X-SSL-Client-Verify": "SUCCESS",
                }
            return factory.post(
                "/hooks/payments/",
                data=b"{}",
                content_type="application/json",
                headers=headers,
                REMOTE_ADDR=peer,
            )

        hit, denied = request("allowed"), request("other")
        spoofed = request("allowed", peer="192.0.2.7")
        assert guarded(hit).status_code == 204
        assert guarded(denied).status_code == 403
        assert guarded(spoofed).status_code == 401
        scenarios: list[tuple[str, Callable[[], Any]]] = [
            ("undecorated view", lambda: view(hit)),
            ("guarded, cache hit (accepted)", lambda: guarded(hit)),
            ("guarded, cache hit (403 identity_not_allowed)", lambda: guarded(denied)),
            ("guarded, header from untrusted peer (401)", lambda: guarded(spoofed)),
        ]
        rows = [(name, per_request(call, args.requests, args.repeat)) for name, call in scenarios]

        misses = [request("allowed"), request("allowed_2")]
        with override_settings(HOOKSHIELD={**settings.HOOKSHIELD, "VERIFY_CACHE_SIZE": 1}):
            turn = [0]

            def miss() -> None:
                turn[0] ^= 1
                guarded(misses[turn[0]])  # two certificates, a one-entry cache: always a miss

            miss_requests = max(args.requests // 10, 100)
            rows.append(
                (
                    "guarded, cache miss (chain verified)",
                    per_request(miss, miss_requests, args.repeat),
                )
            )

    base = rows[0][1]
    print(
        f"hookshield guard overhead, Python {platform.python_version()}, "
        f"Django {django.get_version()}, {platform.machine()}, "
        f"{args.requests} requests x {args.repeat} runs (median)\n"
    )
    print("| scenario | µs / request | added vs undecorated | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, value in rows:
        print(f"| {name} | {value:.1f} | {value - base:+.1f} | {value / base:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
