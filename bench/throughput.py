"""Requests per second through the real stack: nginx terminating mTLS, gunicorn with 4 workers.

    .venv/bin/python bench/throughput.py [--clients 4] [--requests 500] [--rounds 9] [--redis URL]
                                         [--only TEXT]

Each of --clients processes opens one keep-alive mTLS connection and sends --requests POSTs.
Scenarios: the handler unguarded, and guarded with the memory limiter and with the Redis limiter
(a RATE high enough never to refuse), each with its decision lines written to a log file at INFO
and with ``ACCEPTED_LOG_LEVEL = "DEBUG"``, so they are not (the DEBUG rows show the limiter's
cost without the log line's). The unguarded and the guarded handler take turns, --rounds times,
behind the same nginx and gunicorn; a figure is the best round (the statuses are every round's),
as a shared machine's neighbours only ever make a round slower; each guarded row is compared
with the unguarded handler's best round behind the same servers. Behind the Redis limiter's
servers a third handler takes its turn between the two: the unguarded one plus the guard's own
Redis command (its script for the endpoint's rate, sent by its sender on its client, to a key of
its own), the least any guard keeping a shared limit in Redis costs; the guarded row is set
against it too, so what the guard adds beyond its round trip shows apart from the round trip.
Beside it, the median over the rounds of each round's own ratio (the guarded handler against
the unguarded one just before it), which one lucky or unlucky round does not move, and the
CPU the gunicorn processes used per request (the median round, user and system time from
/proc): the guard's own cost in the processes that run it, without nginx's, the clients' or
Redis's, which share the two cores here and would not on a deployment's hosts.
Prints a table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import ALLOWED, guard_config, make_pki
from tests.integration.servers import NginxServer, gunicorn_app, nginx

ROUND_TRIP = "unguarded handler + the guard's own Redis command"
BODY = b'{"type": "payment.succeeded", "data": {"id": "pay_1", "amount": 1200}}'


def _client(
    url: str, ca: str, cert: str, key: str, count: int, ready: Any, go: Any, results: Any
) -> None:
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    statuses: Counter[int] = Counter()
    with httpx.Client(verify=context, timeout=30) as client:
        client.get(url.rsplit("/hooks/", 1)[0] + "/plain/")  # handshake before the clock starts
        ready.put(True)
        go.wait()
        start = time.time()
        for _ in range(count):
            response = client.post(url, content=BODY, headers={"Content-Type": "application/json"})
            statuses[response.status_code] += 1
        results.put((dict(statuses), start, time.time()))


def server_cpu(port: int) -> float:
    """CPU seconds (user and system) used so far by the gunicorn processes bound to ``port``.

    The processes that run the guard, and only those: nginx, the clients and Redis share the
    machine's two cores too, and the throughput figure counts them, where a deployment's Redis
    host and its clients' machines would not.
    """
    needle, ticks = f"127.0.0.1:{port}".encode(), os.sysconf("SC_CLK_TCK")
    used = 0
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            if b"gunicorn" not in (cmdline := (process / "cmdline").read_bytes()):
                continue
            if needle not in cmdline:
                continue
            fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        used += int(fields[11]) + int(fields[12])  # utime and stime, in clock ticks
    return used / ticks


def run(
    url: str, files: tuple[str, str, str], clients: int, requests: int
) -> tuple[float, Counter[int]]:
    """Wall time from the first client's first request to the last client's last answer."""
    context = multiprocessing.get_context("spawn")
    results, ready, go = context.Queue(), context.Queue(), context.Event()
    procs = [
        context.Process(target=_client, args=(url, *files, requests, ready, go, results))
        for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=120)  # every client is connected; the measured window starts now
    go.set()
    totals: Counter[int] = Counter()
    starts, ends = [], []
    for _ in procs:
        statuses, start, end = results.get(timeout=300)
        totals.update(statuses)
        starts.append(start)
        ends.append(end)
    for proc in procs:
        proc.join()
    return max(ends) - min(starts), totals


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains TEXT")
    args = parser.parse_args()
    total = args.clients * args.requests
    rate = f"{total * args.rounds * 10}/minute"
    rows: dict[str, tuple[float, Counter[int]]] = {}
    rounds: dict[str, list[float]] = {}  # each row's elapsed time, round by round
    cpu: dict[str, list[float]] = {}  # each row's gunicorn CPU per request, round by round

    def keep(row: str, elapsed: float, statuses: Counter[int]) -> None:
        best, seen = rows.get(row, (elapsed, Counter[int]()))
        rows[row] = (min(best, elapsed), seen + statuses)
        rounds.setdefault(row, []).append(elapsed)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pki = make_pki(base / "pki")
        client_cert, client_key = pki.files("allowed")
        files = (str(pki.ca_file), str(client_cert), str(client_key))
        cert, key = pki.files("server")
        for name, storage, accepted in (
            ("memory limiter", "memory://", "INFO"),
            # Accepted deliveries' lines at DEBUG, the log file's logger at INFO: only refusals
            # (none here) would be written.
            ("memory limiter, ACCEPTED_LOG_LEVEL DEBUG", "memory://", "DEBUG"),
            ("Redis limiter", args.redis, "INFO"),
            ("Redis limiter, ACCEPTED_LOG_LEVEL DEBUG", args.redis, "DEBUG"),
        ):
            if args.only not in name:
                continue
            slug = name.replace(" ", "-").replace(",", "")
            config = guard_config(
                pki,
                RATE_LIMIT_STORAGE=storage,
                ACCEPTED_LOG_LEVEL=accepted,
                ENDPOINTS={
                    "limited": {"ALLOW": [ALLOWED], "RATE": rate},
                },
            )
            with (
                gunicorn_app(base / slug, config, workers=4) as app,
                nginx(
                    base / f"nginx-{slug}",
                    cert,
                    key,
                    pki.ca_file,
                    [NginxServer(app.port)],
                ) as (port,),
            ):
                handlers = [("unguarded", f"unguarded ({name})"), ("limited", name)]
                if storage != "memory://":
                    # The unguarded handler with the guard's own Redis command, between the two.
                    handlers.insert(1, ("unguarded-round-trip", f"{ROUND_TRIP} ({name})"))
                for path, _ in handlers:  # each worker's first requests, not measured
                    run(f"https://127.0.0.1:{port}/hooks/{path}/", files, args.clients, 50)
                for _ in range(args.rounds):
                    for path, row in handlers:
                        url = f"https://127.0.0.1:{port}/hooks/{path}/"
                        before = server_cpu(app.port)
                        keep(row, *run(url, files, args.clients, args.requests))
                        used = server_cpu(app.port) - before
                        cpu.setdefault(row, []).append(used / total)
    print(
        f"{args.clients} client processes x {args.requests} POSTs, nginx (mTLS) -> gunicorn "
        f"4 sync workers, one keep-alive connection per client; best of {args.rounds} rounds\n"
    )
    # Each guarded row against the unguarded handler's best round behind the same servers.
    print(
        "| scenario | requests/s | unguarded, same servers | vs unguarded | median of rounds "
        "| vs unguarded + own command | median of rounds "
        "| gunicorn CPU µs/request, unguarded | guarded | added | statuses |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row, (elapsed, statuses) in rows.items():
        if row.startswith("unguarded ("):
            continue
        scenario = row.removeprefix(f"{ROUND_TRIP} (").removesuffix(")")
        unguarded, reference = f"unguarded ({scenario})", f"{ROUND_TRIP} ({scenario})"
        cells = [row if row == reference else f"@webhook, {row}", f"{total / elapsed:.0f}"]
        cells += [f"{total / rows[unguarded][0]:.0f}", *ratios(rounds, unguarded, row)]
        if row != reference and reference in rows:
            cells += ratios(rounds, reference, row)
        else:
            cells += ["", ""]
        # The median round of each: clock ticks are 10 ms, a round uses about a second.
        theirs, ours = (statistics.median(cpu[r]) * 1e6 for r in (unguarded, row))
        cells += [f"{theirs:.0f}", f"{ours:.0f}", f"{ours - theirs:+.0f}", str(dict(statuses))]
        print(f"| {' | '.join(cells)} |")
    return 0


def ratios(rounds: dict[str, list[float]], base: str, row: str) -> list[str]:
    """``row`` against ``base``: best round against best round, and the median over the rounds
    of each round's ratio to ``base``'s round just before it (requests per second are
    inversely proportional to elapsed time)."""
    paired = zip(rounds[base], rounds[row], strict=True)
    median = statistics.median(theirs / ours for theirs, ours in paired)
    return [f"{min(rounds[base]) / min(rounds[row]):.2f}x", f"{median:.2f}x"]


if __name__ == "__main__":
    sys.exit(main())
