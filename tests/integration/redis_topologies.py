"""Real highly available Redis deployments on loopback ports, started as operators start them.

A 3-master Redis Cluster (one replica each; ``redis-server --cluster-enabled yes`` then
``redis-cli --cluster create``) and a Sentinel group (one master, one replica, three sentinels).
Timeouts are short (1 s) so that a killed master is replaced within seconds. Each node has its
own directory and config file; the context managers stop every process they started.
"""

from __future__ import annotations

import functools
import math
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from redis.crc import key_slot

from hookshield.core.ratelimit import RETRY_STORAGE_AFTER
from hookshield.core.signatures import sign_v1
from hookshield.demo.processes import free_port, free_ports
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.servers import App, find_binary, serving

SERVICE = "hookshield-test"  # the Sentinel group's master name
NODE_TIMEOUT_MS = 1000

NODE_CONFIG = """
port {port}
bind 127.0.0.1
dir {dir}
save ""
appendonly no
"""

CLUSTER_CONFIG = """
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout {timeout}
cluster-port {bus}
# Healthy masters keep serving their slots while another one has none (the default stops the
# whole cluster), and a replica takes over however long it was cut off.
cluster-require-full-coverage no
cluster-replica-validity-factor 0
"""

SENTINEL_CONFIG = """
sentinel monitor {service} 127.0.0.1 {master} 2
sentinel down-after-milliseconds {service} {timeout}
sentinel failover-timeout {service} 3000
sentinel parallel-syncs {service} 1
"""


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def pause(self) -> None:
        """SIGSTOP: a node that answers nothing until ``resume`` (holds off a failover)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no goodbye to replicas, sentinels or clients, as a crashed host."""
        self.process.kill()
        self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Clock:
    """A monotonic clock the test moves (``RateLimiter(monotonic=...)`` and the stores')."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def until(condition: Callable[[], bool], *, within: float, what: str) -> None:
    """Poll ``condition`` (errors count as not yet) until true, or fail naming ``what``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {within:.0f} s: {what}")


def _start(
    stack: ExitStack, directory: Path, config: str, *extra: str, port: int | None = None
) -> Node:
    port = port or free_port()
    directory.mkdir(parents=True)
    conf = directory / "redis.conf"  # a sentinel rewrites its own: a file of its own, writable
    conf.write_text(NODE_CONFIG.format(port=port, dir=directory) + config)
    command = [find_binary("redis-server"), str(conf), *extra]
    process = stack.enter_context(
        serving(command, output=directory / "redis.log", ports=[port], what="redis-server")
    )
    return Node(port, process)


@contextmanager
def redis_node(directory: Path, config: str = "") -> Iterator[Node]:
    """One redis-server of the test's own (for counting the commands it receives); ``config``:
    more directives (a unix socket, TLS)."""
    with ExitStack() as stack:
        yield _start(stack, directory, config)


@contextmanager
def commands_sent(node: Node) -> Iterator[list[str]]:
    """The commands clients send the node meanwhile, as MONITOR reports them (a script's own
    calls are not sent: they are left out); filled in when the block ends."""
    sent: list[str] = []
    marker = f"end-{uuid.uuid4().hex}"
    probe = node.client()
    probe.ping()  # connected (HELLO...) before MONITOR starts
    with node.client().monitor() as monitor:
        yield sent
        probe.echo(marker)
        while True:
            command = monitor.next_command()
            if marker in command["command"]:
                break
            if command["client_type"] != "lua":
                sent.append(command["command"].split(" ")[0].upper())


# How `redis-cli --cluster create` splits the 16384 slots over three masters.
SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))


def one_per_master(prefix: str) -> tuple[str, ...]:
    """Endpoint names whose hash tags fall one in each master's slots (in SLOT_RANGES order)."""
    names: list[str] = []
    for low, high in SLOT_RANGES:
        names.append(
            next(
                f"{prefix}{i}"
                for i in range(10_000)
                if low <= key_slot(f"{prefix}{i}".encode()) <= high
            )
        )
    return tuple(names)


@dataclass
class Cluster:
    nodes: list[Node]

    @property
    def uri(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def _any(self) -> redis.Redis:
        return next(n for n in self.nodes if n.alive).client()

    def master_of(self, tag: str) -> Node:
        """The node serving ``tag``'s slot now, as a live node reports it."""
        slot = key_slot(tag.encode())
        for start, end, master, *_ in self._any().execute_command("CLUSTER SLOTS"):
            if int(start) <= slot <= int(end):
                return next(n for n in self.nodes if n.port == int(master[1]))
        raise AssertionError(f"no node serves slot {slot}")

    def replica_of(self, master: Node) -> Node:
        for row in self._any().execute_command("CLUSTER SLOTS"):
            if int(row[2][1]) == master.port:
                return next(n for n in self.nodes if n.port == int(row[3][1]))
        raise AssertionError(f"no replica of {master.port}")

    def masters(self) -> list[Node]:
        rows = self._any().execute_command("CLUSTER SLOTS")
        ports = {int(row[2][1]) for row in rows}
        return [n for n in self.nodes if n.port in ports]

    def healthy(self) -> bool:
        """Every live node sees 3 masters each with a replica in sync, and the cluster ok."""
        for node in self.nodes:
            if not node.alive:
                continue
            if node.client().execute_command("CLUSTER INFO")["cluster_state"] != "ok":
                return False
        rows = self._any().execute_command("CLUSTER SLOTS")
        return len(rows) == 3 and all(len(row) >= 4 for row in rows)


@contextmanager
def redis_cluster(directory: Path) -> Iterator[Cluster]:
    """Six nodes: three masters with one replica each, the 16384 slots split evenly."""
    cli = find_binary("redis-cli")
    with ExitStack() as stack:
        # The bus port is given: port + 10000, the default, may be taken or above 65535. The
        # two are chosen together, so that they differ.
        nodes = []
        for i in range(6):
            port, bus = free_ports(2)
            config = CLUSTER_CONFIG.format(timeout=NODE_TIMEOUT_MS, bus=bus)
            nodes.append(_start(stack, directory / f"node{i}", config, port=port))
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster = Cluster(nodes)
        until(cluster.healthy, within=30, what="the cluster is ok with 3 masters and 3 replicas")
        yield cluster


@dataclass
class SentinelGroup:
    master: Node
    replica: Node
    sentinels: list[Node]

    @property
    def uri(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def master_port(self) -> int:
        """The master's port as a live sentinel names it."""
        sentinel = next(s for s in self.sentinels if s.alive).client()
        _, port = sentinel.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def ready(self) -> bool:
        """The replica in sync; every sentinel knows the replica and the two other sentinels."""
        link = self.replica.client().info("replication")
        if link.get("master_link_status") != "up":
            return False
        for sentinel in self.sentinels:
            client = sentinel.client()
            if len(client.execute_command("SENTINEL REPLICAS", SERVICE)) != 1:
                return False
            if len(client.execute_command("SENTINEL SENTINELS", SERVICE)) != 2:
                return False
        return True


@contextmanager
def sentinel_group(directory: Path) -> Iterator[SentinelGroup]:
    with ExitStack() as stack:
        master = _start(stack, directory / "master", "")
        replica = _start(stack, directory / "replica", f"replicaof 127.0.0.1 {master.port}\n")
        sentinels = [
            _start(
                stack,
                directory / f"sentinel{i}",
                SENTINEL_CONFIG.format(
                    service=SERVICE, master=master.port, timeout=NODE_TIMEOUT_MS
                ),
                "--sentinel",
            )
            for i in range(3)
        ]
        group = SentinelGroup(master, replica, sentinels)
        until(group.ready, within=60, what="the replica and three sentinels see each other")
        yield group


# -- traffic: signed deliveries through gunicorn, as nginx forwards them -------------------------

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type": "paid"}'
WAIT = 30.0  # the most a failover may take before a test gives up on it
SETTLE = 1.0
OK = (200, "")
# What RATE_LIMIT_FAILURE = "deny" and the fail-closed replay store answer without a master.
UNAVAILABLE = {(503, "rate_limit_unavailable"), (503, "replay_store_unavailable")}


def shared_state_config(pki: TestPki, uri: str, rates: dict[str, str]) -> dict[str, Any]:
    """Rate limits and replay claims on ``uri``; each endpoint signed, with its rate."""
    endpoints = {
        name: {"ALLOW": [ALLOWED], "RATE": rate, "SIGNING_SECRETS": [SECRET]}
        for name, rate in rates.items()
    }
    return guard_config(
        pki,
        RATE_LIMIT_STORAGE=uri,
        REPLAY_STORAGE=uri,
        RATE_LIMIT_FAILURE="deny",
        ENDPOINTS=endpoints,
    )


def signed_headers(pki: TestPki, msg_id: str, body: bytes = BODY) -> dict[str, str]:
    stamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_v1(SECRET, msg_id, stamp, body),
    }


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def outcome(response: httpx.Response) -> tuple[int, str]:
    """The status and, for a refusal, its stable code."""
    if response.status_code == 200:
        return 200, ""
    return response.status_code, str(response.json()["error"]["code"])


def deliver(app: App, endpoint: str, headers: dict[str, str]) -> tuple[int, str]:
    url = f"http://127.0.0.1:{app.port}/hooks/by-name/{endpoint}/"
    return outcome(httpx.post(url, content=BODY, headers=headers, timeout=30))


def at_once(sends: Sequence[Callable[[], tuple[int, str]]]) -> Counter[tuple[int, str]]:
    """Every send at the same time (one thread each), their outcomes counted."""
    with ThreadPoolExecutor(max_workers=len(sends)) as pool:
        return Counter(pool.map(lambda send: send(), sends))


def exactly_the_limit(apps: list[App], pki: TestPki, endpoint: str, limit: int) -> None:
    """Twice ``limit`` fresh deliveries at once, spread over every server: ``limit`` accepted."""
    sends = [
        functools.partial(deliver, apps[i % len(apps)], endpoint, signed_headers(pki, new_id()))
        for i in range(2 * limit)
    ]
    assert at_once(sends) == {(200, ""): limit, (429, "rate_limited"): limit}


def accepted_once(apps: list[App], pki: TestPki, endpoint: str, copies: int = 24) -> None:
    """One delivery sent ``copies`` times at once to every server: accepted once."""
    headers = signed_headers(pki, new_id())
    sends = [
        functools.partial(deliver, apps[i % len(apps)], endpoint, headers) for i in range(copies)
    ]
    assert at_once(sends) == {(200, ""): 1, (409, "delivery_replayed"): copies - 1}


@dataclass
class Traffic:
    """Fresh signed deliveries, one endpoint after the other, round the servers, until stopped."""

    apps: list[App]
    pki: TestPki
    endpoints: list[str]
    seen: list[tuple[float, str, tuple[int, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            for endpoint in self.endpoints:
                app = self.apps[turn % len(self.apps)]
                turn += 1
                try:
                    result = deliver(app, endpoint, signed_headers(self.pki, new_id()))
                except (httpx.HTTPError, ValueError, KeyError) as exc:  # no answer, or not ours
                    result = (0, type(exc).__name__)
                self.seen.append((time.monotonic(), endpoint, result))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def of(self, endpoint: str, after: float = -math.inf) -> list[tuple[int, str]]:
        return [result for t, name, result in list(self.seen) if name == endpoint and t > after]

    def wait_for(self, endpoint: str, results: set[tuple[int, str]], after: float) -> float:
        """When ``endpoint`` first answered one of ``results`` after ``after`` (fails after
        WAIT s)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for t, name, seen in list(self.seen):
                if name == endpoint and t > after and seen in results:
                    return t
            time.sleep(0.1)
        raise AssertionError(f"{endpoint} never answered {results} within {WAIT:.0f} s")

    def recovers(self, endpoint: str, promoted: float) -> float:
        """Runs until every worker has had time to ask the new master, and then some: when
        that was (RETRY_STORAGE_AFTER after the promotion; SETTLE for a request in flight)."""
        settled = promoted + RETRY_STORAGE_AFTER + SETTLE
        self.wait_for(endpoint, {OK}, after=settled + 1)
        return settled
