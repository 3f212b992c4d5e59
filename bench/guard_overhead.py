"""The guard's in-process cost per request, against the same view unguarded and against the stack
users assemble today (django-ratelimit plus a DN-header check), all in one run.

    .venv/bin/python bench/guard_overhead.py [--requests N] [--repeat R] [--redis URL] [--only TEXT]

Each scenario calls a Django view N times with one request whose body stream is rewound before
each call (the rewind is part of every scenario, the baseline included), interleaved with the
undecorated view: blocks of BLOCK calls of one, then of the other, so both see the same machine
at the same moments. A figure is the best of R runs, per request: on a shared machine the slower
runs measure the neighbours, not the code (the reasoning of ``timeit``); the median is printed
beside it to show how noisy the run was. What the guard adds, and the ratio to the undecorated
view, compare the best runs of both; the median over the runs of each run's own ratio is
printed too.
Every view parses the JSON body, as a webhook handler must. Nothing here asserts a time: the
numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import django
import limits
from django.conf import settings
from django.http import HttpResponse

from hookshield.core.errors import Rejection

ALLOWED = "spiffe://corp.example/payments-gateway"
BODY = b'{"type": "payment.succeeded", "data": {"id": "pay_1", "amount": 1200}}'
# A rate the measured runs never exceed: each run sends REQUESTS deliveries and the limiter's
# storage is emptied between runs (a moving window keeps one entry per request in the window,
# as a real 2000/minute limit would).
RATE = "2000/minute"
REQUESTS = 2000
BLOCK = 20
PING = "undecorated view + one PING on the guard's Redis client"
POOLED_PING = "undecorated view + one PING on a connection of the guard's Redis client's pool"
OWN_COMMAND = (
    "undecorated view + the guard's own Redis command (EVALSHA), sent as the guard sends it"
)
MEMORY_AFTER_ROUND_TRIP = (
    "the guard's own Redis command, then hookshield, cache hit, memory limiter, "
    "Django's default LOGGING"
)
REDIS_QUIET = "hookshield, cache hit, Redis limiter, Django's default LOGGING"
ONLY = ""  # --only: the scenarios measured are those whose name contains this text


class DiscardingHandler(logging.Handler):
    """Takes every record (its lock and filters run) and writes nothing: the guard's cost of a
    decision line a deployment keeps, without the cost of the handler's own output."""

    def emit(self, record: logging.LogRecord) -> None:
        pass


def configure(directory: Path, redis_url: str) -> dict[str, Any]:
    from hookshield.pki import CertificateAuthority

    root = CertificateAuthority.create("bench root")
    (directory / "ca.pem").write_bytes(root.cert_pem)
    certs = {
        "allowed": root.issue_client(spiffe_id=ALLOWED, common_name="payments-gateway"),
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
        # The INVENTORY rows' background thread writes its counts here, as in a deployment.
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": directory / "bench.db"}
        },
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "redis": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
            },
        },
        SILENCED_SYSTEM_CHECKS=["django_ratelimit.E003", "django_ratelimit.W001"],
        HOOKSHIELD=hookshield_settings(directory, "memory://"),
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # Decision lines are built and handled as in production (INFO), then dropped: the guard's
    # cost, not the cost of the log handler's I/O. (A NullHandler would not do: the guard builds
    # no record that no handler can emit.)
    logger = logging.getLogger("hookshield")
    logger.setLevel(logging.INFO)
    logger.addHandler(DiscardingHandler())
    logger.propagate = False
    return certs


@contextlib.contextmanager
def default_logging() -> Iterator[None]:
    """hookshield's loggers as a project without a LOGGING entry for them leaves them: no
    handler and no level of their own, so the root logger's WARNING applies and records
    propagate to it, without handlers, where only the standard library's last resort
    (WARNING) would write. Accepted deliveries' INFO lines are below that level, so the guard
    builds no record for them."""
    logger = logging.getLogger("hookshield")
    handlers, propagate, level = logger.handlers[:], logger.propagate, logger.level
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)  # the root logger's WARNING, as LOGGING leaves it
    assert not logging.getLogger().handlers
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def hookshield_settings(directory: Path, storage: str, **extra: Any) -> dict[str, Any]:
    return {
        "CERT_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "TRUST_ANCHORS": [str(directory / "ca.pem")],
        "RATE_LIMIT_STORAGE": storage,
        "ENDPOINTS": {
            "plain": {"ALLOW": [ALLOWED]},
            "limited": {"ALLOW": [ALLOWED], "RATE": RATE},
        },
        **extra,
    }


urlpatterns: list[Any] = []


def plain_view(request: Any) -> HttpResponse:
    json.loads(request.body)
    return HttpResponse(status=204)


def guarded_view(request: Any) -> HttpResponse:
    assert request.webhook.json is not None
    return HttpResponse(status=204)


def make_request(certs: dict[str, Any], cert: str, peer: str = "127.0.0.1") -> Any:
    """A POST of BODY with ``cert`` as nginx forwards it, from ``peer``."""
    from django.test import RequestFactory

    from hookshield.pki import encodings

    issued = certs[cert].certificate
    return RequestFactory().post(
        "/hooks/",
        data=BODY,
        content_type="application/json",
        REMOTE_ADDR=peer,
        headers={
            "X-SSL-Client-Cert": encodings.nginx_escaped(issued),
            "X-SSL-Client-Verify": "SUCCESS",
            "X-SSL-Client-S-DN": issued.subject.rfc4514_string(),
        },
    )


def rewound(view: Callable[[Any], Any], req: Any) -> Callable[[], Any]:
    """Calls ``view`` with ``req``, its body stream rewound first (part of every scenario)."""
    from django.core.handlers.wsgi import LimitedStream

    def call() -> Any:
        req._stream = LimitedStream(io.BytesIO(BODY), len(BODY))
        req._read_started = False
        req.__dict__.pop("_body", None)
        return view(req)

    return call


class Timing(NamedTuple):
    """µs per request over the runs."""

    best: float
    median: float
    baseline: float  # best run of the undecorated view interleaved with this scenario
    baseline_median: float
    median_ratio: float  # the median over the runs of each run's ratio to its undecorated time

    @property
    def added(self) -> float:
        return self.best - self.baseline

    @property
    def ratio(self) -> float:
        return self.best / self.baseline


def reset_limiter() -> None:
    from hookshield.django.guard import get_guard

    guard = get_guard()
    if not isinstance(guard, Rejection):
        guard.limiter.reset()


def per_request(
    call: Callable[[], Any],
    baseline: Callable[[], Any],
    requests: int,
    repeat: int,
    reset: Callable[[], None] = reset_limiter,
) -> Timing:
    """``call`` and ``baseline`` in alternating blocks, ``repeat`` runs of ``requests`` each,
    ``reset`` before each run."""
    runs: list[tuple[float, float]] = []
    blocks = max(requests // BLOCK, 1)
    for _ in range(repeat):
        reset()
        spent = [0, 0]
        for _ in range(blocks):
            for index, which in enumerate((baseline, call)):
                start = time.perf_counter_ns()
                for _ in range(BLOCK):
                    which()
                spent[index] += time.perf_counter_ns() - start
        runs.append((spent[1] / blocks / BLOCK / 1000, spent[0] / blocks / BLOCK / 1000))
    return Timing(
        best=min(r[0] for r in runs),
        median=statistics.median(r[0] for r in runs),
        baseline=min(r[1] for r in runs),
        baseline_median=statistics.median(r[1] for r in runs),
        median_ratio=statistics.median(r[0] / r[1] for r in runs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--only", default="", help="measure only the scenarios whose name contains this text"
    )
    args = parser.parse_args()
    global ONLY
    ONLY = args.only

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        certs = configure(directory, args.redis)
        from django.test import override_settings
        from django_ratelimit.decorators import ratelimit

        from hookshield.django import webhook

        def dn_check_view(request: Any) -> HttpResponse:
            # The stack the mission describes: trust the proxy's DN header, match a substring.
            if "CN=payments-gateway" not in request.META.get("HTTP_X_SSL_CLIENT_S_DN", ""):
                return HttpResponse(status=403)
            json.loads(request.body)
            return HttpResponse(status=204)

        guarded = {name: webhook(name)(guarded_view) for name in ("plain", "limited")}
        ratelimited = {
            cache: ratelimit(key="header:x-ssl-client-s-dn", rate="1000000/m", block=True)(
                dn_check_view
            )
            for cache in ("default", "redis")
        }

        def request(cert: str, peer: str = "127.0.0.1") -> Any:
            return make_request(certs, cert, peer)

        hit, denied = request("allowed"), request("other")
        spoofed = request("allowed", peer="192.0.2.7")
        scenarios: list[tuple[str, Callable[[], Any], int]] = [
            ("undecorated view", rewound(plain_view, hit), 204),
            (
                "django-ratelimit (LocMem) + DN-header check",
                rewound(ratelimited["default"], hit),
                204,
            ),
            ("hookshield, cache hit, no RATE", rewound(guarded["plain"], hit), 204),
            ("hookshield, cache hit, memory limiter", rewound(guarded["limited"], hit), 204),
            ("hookshield, 403 identity_not_allowed", rewound(guarded["plain"], denied), 403),
            (
                "hookshield, header from untrusted peer (401)",
                rewound(guarded["plain"], spoofed),
                401,
            ),
        ]
        baseline = rewound(plain_view, request("allowed"))
        sizes = (baseline, args.requests, args.repeat)
        rows = measure(scenarios, *sizes)
        # Rows set against a reference interleaved with them: (row, reference, timing).
        paired: list[tuple[str, str, Timing]] = []

        def pair(
            name: str,
            call: Callable[[], Any],
            reference: str,
            other: Callable[[], Any],
            reset: Callable[[], None] = reset_limiter,
        ) -> None:
            if ONLY in name:
                timing = per_request(call, other, args.requests, args.repeat, reset)
                paired.append((name, reference, timing))

        with default_logging():
            rows += measure(
                [
                    (
                        "hookshield, cache hit, memory limiter, Django's default LOGGING",
                        rewound(guarded["limited"], hit),
                        204,
                    )
                ],
                *sizes,
            )
        for label, extra in (
            # The logger stays at INFO: accepted deliveries' lines are then never built.
            ("ACCEPTED_LOG_LEVEL DEBUG", {"ACCEPTED_LOG_LEVEL": "DEBUG"}),
            ("INVENTORY", {"INVENTORY": True}),
            ("INVENTORY + METRICS", {"INVENTORY": True, "METRICS": True}),
        ):
            with override_settings(HOOKSHIELD=hookshield_settings(directory, "memory://", **extra)):
                name = f"hookshield, cache hit, memory limiter, {label}"
                rows += measure([(name, rewound(guarded["limited"], hit), 204)], *sizes)

        with override_settings(
            RATELIMIT_USE_CACHE="redis",
            HOOKSHIELD=hookshield_settings(directory, args.redis),
        ):
            redis_scenarios = [
                (
                    "django-ratelimit (Redis) + DN-header check",
                    rewound(ratelimited["redis"], hit),
                    204,
                ),
                ("hookshield, cache hit, Redis limiter", rewound(guarded["limited"], hit), 204),
            ]
            rows += measure(redis_scenarios, *sizes)
            # One round trip on the guard's own Redis client, to set the guarded Redis path
            # against: what it adds beyond a round trip is the difference of the rows. Once
            # through the client, once as the guard sends its scripts (without the wrapping).
            from hookshield.core.redis_hit import hit_script
            from hookshield.core.redis_topology import keyed_script
            from hookshield.django.guard import get_guard

            rewound(guarded["limited"], hit)()  # the guard built, its client connected
            guard = get_guard()
            assert not isinstance(guard, Rejection)
            assert guard.limiter is not None
            storage = guard.limiter.redis
            assert storage is not None
            client: Any = storage.get_connection()

            def ping_view(request: Any) -> HttpResponse:
                json.loads(request.body)
                client.ping()
                return HttpResponse(status=204)

            pool = client.connection_pool

            def pooled_ping_view(request: Any) -> HttpResponse:
                # A PING sent as the guard sends its scripts (redis_topology.KeyedScript).
                json.loads(request.body)
                connection = pool.get_connection()
                try:
                    connection.send_command("PING")
                    connection.read_response()
                finally:
                    pool.release(connection)
                return HttpResponse(status=204)

            # The guard's own round trip: its script for this endpoint's one limit, sent by
            # the guard's sender to a key of its own, so that what the guarded row adds beyond
            # it is the guard's work around the command. The keys are emptied with the
            # limiter's before each run, so the command is admitted, as the guard's is.
            rate = limits.parse(RATE)
            command = keyed_script(storage, hit_script([(rate.amount, rate.get_expiry())], 0))
            key, after_key = (storage.prefixed_key(f"bench-own-command-{n}") for n in (1, 2))

            def admitted(command_key: str) -> None:
                answer = command([command_key], [time.time()])
                assert not isinstance(answer, list), "the reference command was refused"

            def own_command_view(request: Any) -> HttpResponse:
                json.loads(request.body)
                admitted(key)
                return HttpResponse(status=204)

            def empty_all() -> None:  # the memory limiter's storage, and these keys
                reset_limiter()
                storage.reset()

            rows += measure([(PING, rewound(ping_view, hit), 204)], *sizes)
            rows += measure([(POOLED_PING, rewound(pooled_ping_view, hit), 204)], *sizes)
            rows += measure([(OWN_COMMAND, rewound(own_command_view, hit), 204)], *sizes)
            with default_logging():
                quiet = rewound(guarded["limited"], hit)
                rows += measure([(REDIS_QUIET, quiet, 204)], *sizes)
                # The same difference, interleaved with the reference itself: round trips on a
                # shared machine swing between rows by more than the guard's work around them.
                pair(REDIS_QUIET, quiet, POOLED_PING, rewound(pooled_ping_view, hit))
                pair(REDIS_QUIET, quiet, OWN_COMMAND, rewound(own_command_view, hit))

        def after_round_trip(view: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def call(request: Any) -> Any:
                admitted(after_key)  # the same command, to a key of its own
                return view(request)

            return call

        # The memory path's own work, each request right after the same round trip: what the
        # guard's code costs after a blocking wait, with no Redis code of its own in it.
        with default_logging():
            pair(
                MEMORY_AFTER_ROUND_TRIP,
                rewound(after_round_trip(guarded["limited"]), hit),
                OWN_COMMAND,
                rewound(own_command_view, hit),
                empty_all,
            )

        misses = [request("allowed"), request("allowed_2")]
        with override_settings(
            HOOKSHIELD=hookshield_settings(directory, "memory://", VERIFY_CACHE_SIZE=1)
        ):
            turn = [0]
            calls = [rewound(guarded["plain"], m) for m in misses]

            def miss() -> None:
                turn[0] ^= 1
                calls[turn[0]]()  # two certificates, a one-entry cache: always a miss

            rows += measure(
                [("hookshield, cache miss (chain verified)", miss, 0)],
                baseline,
                max(args.requests // 10, 100),
                args.repeat,
            )

    report(rows, paired, args)
    return 0


def measure(
    scenarios: list[tuple[str, Callable[[], Any], int]],
    baseline: Callable[[], Any],
    requests: int,
    repeat: int,
) -> list[tuple[str, Timing]]:
    rows = []
    for name, call, status in scenarios:
        if ONLY not in name:
            continue
        if status:
            reset_limiter()
            got = call().status_code
            assert got == status, f"{name}: expected {status}, got {got}"
        rows.append((name, per_request(call, baseline, requests, repeat)))
    return rows


def report(
    rows: list[tuple[str, Timing]],
    paired: list[tuple[str, str, Timing]],
    args: argparse.Namespace,
) -> None:
    best = {name: timing.best for name, timing in rows}
    stacks = {
        "LocMem": best.get("django-ratelimit (LocMem) + DN-header check"),
        "Redis": best.get("django-ratelimit (Redis) + DN-header check"),
    }
    print(
        f"hookshield guard overhead: Python {platform.python_version()}, "
        f"Django {django.get_version()}, {platform.machine()}, "
        f"{args.requests} requests x {args.repeat} runs, interleaved with the undecorated view "
        f"in blocks of {BLOCK} (best run; median beside it; added and ratio: best against best)\n"
    )
    print(
        "| scenario | µs / request | median | undecorated, same run | added "
        "| vs undecorated | median of runs | vs django-ratelimit stack |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, timing in rows:
        stack = stacks["Redis"] if "Redis" in name else stacks["LocMem"]
        versus = f"{timing.best / stack:.2f}x" if stack and name.startswith("hookshield") else ""
        print(
            f"| {name} | {timing.best:.1f} | {timing.median:.1f} | {timing.baseline:.1f} "
            f"| {timing.added:+.1f} | {timing.ratio:.2f}x | {timing.median_ratio:.2f}x | {versus} |"
        )
    timings = dict(rows)
    for reference in (PING, POOLED_PING, OWN_COMMAND):
        if reference in timings and REDIS_QUIET in timings:
            beyond = timings[REDIS_QUIET].added - timings[reference].added
            print(f"\n{REDIS_QUIET}, beyond the row '{reference}': {beyond:+.1f} µs")
    for name, reference, timing in paired:
        print(
            f"\n{name}, interleaved with '{reference}' in its place: "
            f"{timing.added:+.1f} µs beyond it (best runs; medians {timing.median:.1f} against "
            f"{timing.baseline_median:.1f} µs)"
        )


if __name__ == "__main__":
    sys.exit(main())
