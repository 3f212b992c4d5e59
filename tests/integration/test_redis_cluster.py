"""Rate limits and replay claims on a real 3-master Redis Cluster (one replica each), shared by
two gunicorn servers with two workers each."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from redis.connection import AbstractConnection
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hookshield.core.errors import Code
from hookshield.core.ratelimit import RateLimiter, RateLimitFailure, parse_rates
from hookshield.core.redis_topology import RETRY_AFTER
from hookshield.core.replay import RedisReplayStore, StoreUnavailable, claim_token, replay_key
from tests.conftest import TestPki
from tests.integration.redis_topologies import (
    BODY,
    OK,
    UNAVAILABLE,
    WAIT,
    Clock,
    Cluster,
    Traffic,
    accepted_once,
    commands_sent,
    exactly_the_limit,
    new_id,
    one_per_master,
    redis_cluster,
    shared_state_config,
    signed_headers,
    until,
)
from tests.integration.servers import App, gunicorn_app

pytestmark = pytest.mark.integration

# Endpoints whose keys live one on each master: rated ones, and ones rated so high that only
# replay protection refuses.
RATED = one_per_master("rated")
OPEN = one_per_master("open")
LATER = one_per_master("later")  # rated, first used after the failover
LIMIT = 12


@dataclass(frozen=True)
class Deployment:
    cluster: Cluster
    apps: list[App]


@pytest.fixture(scope="module")
def deployment(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("redis-cluster")
    with redis_cluster(base / "cluster") as cluster:
        rates = dict.fromkeys(RATED + LATER, f"{LIMIT}/minute")
        rates |= dict.fromkeys(OPEN, "100000/minute")
        config = shared_state_config(pki, cluster.uri, rates)
        with (
            gunicorn_app(base / "one", config, workers=2) as one,
            gunicorn_app(base / "two", config, workers=2) as two,
        ):
            yield Deployment(cluster, [one, two])


def test_the_endpoints_live_on_three_different_masters(deployment: Deployment) -> None:
    for names in (RATED, OPEN):
        assert len({deployment.cluster.master_of(name).port for name in names}) == 3


@pytest.mark.parametrize("endpoint", RATED)
def test_each_master_counts_an_exact_limit_for_four_workers(
    deployment: Deployment, pki: TestPki, endpoint: str
) -> None:
    exactly_the_limit(deployment.apps, pki, endpoint, LIMIT)


@pytest.mark.parametrize("endpoint", OPEN)
def test_each_master_accepts_a_delivery_once_across_four_workers(
    deployment: Deployment, pki: TestPki, endpoint: str
) -> None:
    accepted_once(deployment.apps, pki, endpoint)


def test_an_endpoints_rate_and_replay_keys_share_its_slot(
    deployment: Deployment, pki: TestPki
) -> None:
    """Both kinds of key are on the master serving the endpoint's tag, and nowhere else."""
    endpoint = OPEN[1]
    accepted_once(deployment.apps, pki, endpoint, copies=2)
    master = deployment.cluster.master_of(endpoint)
    keys = [k.decode() for k in master.client().scan_iter(match=f"hookshield*{{{endpoint}}}*")]
    assert any(k.startswith(f"hookshield:LIMITER/{{{endpoint}}}/") for k in keys), keys
    assert any(k.startswith(f"hookshield:replay:{{{endpoint}}}:") for k in keys), keys
    assert {key_slot(k.encode()) for k in keys} == {key_slot(endpoint.encode())}


def post_here(pki: TestPki, endpoint: str, msg_id: str) -> int:
    """A signed delivery to the test URLconf's ``endpoint``, in this process (Django's client)."""
    headers = signed_headers(pki, msg_id)
    meta: dict[str, Any] = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    meta.pop("HTTP_CONTENT_TYPE")
    url = f"/hooks/{endpoint}/"
    return Client().post(url, data=BODY, content_type="application/json", **meta).status_code


def test_a_signed_rated_delivery_is_one_command_on_its_master_only(
    deployment: Deployment, pki: TestPki, settings: Any
) -> None:
    """In this process (the Django test client), on the cluster: the EVALSHA goes to the master
    serving the endpoint's slot, and no other command to any master."""
    endpoint = "payments"  # the test URLconf's endpoint
    settings.HOOKSHIELD = shared_state_config(
        pki, deployment.cluster.uri, {endpoint: "100/minute; 1000/hour"}
    )
    assert post_here(pki, endpoint, new_id()) == 200  # connects, loads the script
    masters = deployment.cluster.masters()
    with ExitStack() as stack:
        sent = {m.port: stack.enter_context(commands_sent(m)) for m in masters}
        assert post_here(pki, endpoint, new_id()) == 200
    home = deployment.cluster.master_of(endpoint).port
    assert sent == {m.port: (["EVALSHA"] if m.port == home else []) for m in masters}


def test_the_cluster_clients_own_retry_of_a_lost_answer_counts_the_claim_as_made(
    deployment: Deployment, pki: TestPki, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer to the guard's EVALSHA is lost after the master ran it (read, then the
    connection dropped, as a reset on the way back would): the cluster client sends the command
    once more, the script finds the claim holding the request's own token, and the delivery is
    accepted; its copy is then a replay. The rate windows count that request twice, as the
    README says."""
    endpoint = "payments"
    settings.HOOKSHIELD = shared_state_config(
        pki, deployment.cluster.uri, {endpoint: "100/minute; 1000/hour"}
    )
    assert post_here(pki, endpoint, new_id()) == 200  # connected, the slot map and script known
    home = deployment.cluster.master_of(endpoint)
    lose = {"answers": 1}
    read_response = AbstractConnection.read_response

    def losing(connection: Any, *args: Any, **kwargs: Any) -> Any:
        answer = read_response(connection, *args, **kwargs)
        if lose["answers"] and getattr(connection, "port", None) == home.port:
            lose["answers"] -= 1
            connection.disconnect()
            raise RedisConnectionError("the answer was lost on its way back")
        return answer

    def windows() -> list[int]:
        client = home.client()
        keys = client.scan_iter(match=f"hookshield:LIMITER/{{{endpoint}}}/*")
        return sorted(client.llen(key) for key in keys)

    def evalsha_calls() -> int:
        return int(home.client().info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

    before, calls = windows(), evalsha_calls()
    monkeypatch.setattr(AbstractConnection, "read_response", losing)
    msg_id = new_id()
    assert post_here(pki, endpoint, msg_id) == 200
    monkeypatch.undo()
    assert lose["answers"] == 0  # an answer was lost
    assert evalsha_calls() == calls + 2  # the script ran twice: the command and its retry
    assert [n - b for n, b in zip(windows(), before, strict=True)] == [2, 2]  # counted twice
    assert post_here(pki, endpoint, msg_id) == 409  # the claim stands: its copy is a replay


def test_a_silent_master_costs_one_timeout_and_one_retry_per_pause(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A master and its replica stop answering (SIGSTOP): the first request on its slot waits
    for one timeout and the cluster client's one retry, then the slot is left alone for
    RETRY_AFTER (no command sent to it, the failure mode answering at once) while the other
    masters' endpoints are counted and claimed on Redis; after the pause, one timeout and one
    retry again. Attempts are counted (the commands that timed out), not timed."""
    cluster = deployment.cluster
    victim, healthy = OPEN[1], OPEN[0]
    clock = Clock()
    limiter = RateLimiter(cluster.uri, failure=RateLimitFailure.DENY, monotonic=clock)
    rates = parse_rates("100000/minute", "RATE")

    def hit(endpoint: str) -> tuple[Any, bool | None]:
        claim = (replay_key(endpoint, new_id()), 60, claim_token())
        return limiter.hit_and_claim(endpoint, "someone", rates, claim)

    def refusal(endpoint: str) -> Code | None:
        refused, _ = hit(endpoint)
        return refused.code if refused is not None else None

    assert hit(victim) == hit(healthy) == (None, True)  # connected, the script loaded
    silent = cluster.master_of(victim)
    replica = cluster.replica_of(silent)
    sent: list[str] = []  # the commands sent to the silent master, and how each ended
    send, read = AbstractConnection.send_packed_command, AbstractConnection.read_response

    def sending(connection: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(connection, "port", None) == silent.port:
            sent.append("sent")
        return send(connection, command, *args, **kwargs)

    def reading(connection: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return read(connection, *args, **kwargs)
        except RedisTimeoutError:
            if getattr(connection, "port", None) == silent.port:
                sent[-1] = "timed out"
            raise

    monkeypatch.setattr(AbstractConnection, "send_packed_command", sending)
    monkeypatch.setattr(AbstractConnection, "read_response", reading)
    replica.pause()
    silent.pause()
    try:
        assert refusal(victim) is Code.RATE_LIMIT_UNAVAILABLE
        assert sent == ["timed out", "timed out"]  # the EVALSHA, then the client's one retry
        for _ in range(10):  # within RETRY_AFTER: the failure mode at once, nothing sent
            clock.now += RETRY_AFTER / 20
            assert refusal(victim) is Code.RATE_LIMIT_UNAVAILABLE
            assert hit(healthy) == (None, True)
        assert sent == ["timed out", "timed out"]
        clock.now += RETRY_AFTER / 2  # the pause is over: asked again, once and its retry
        assert refusal(victim) is Code.RATE_LIMIT_UNAVAILABLE
        assert sent == ["timed out"] * 4
    finally:
        silent.resume()
        replica.resume()
        monkeypatch.undo()
    until(cluster.healthy, within=WAIT, what="the cluster is whole again")


def test_a_master_that_stops_answering_holds_only_its_own_endpoints(
    deployment: Deployment, pki: TestPki
) -> None:
    """A master and its replica stop answering (SIGSTOP: a network partition, where requests
    time out rather than being refused) under steady traffic, then come back: the other
    masters' endpoints answer 200 throughout; the silent master's endpoint answers 503 (deny)
    while it is silent and 200 again once the cluster is whole, never a 500."""
    cluster = deployment.cluster
    victim, healthy = OPEN[1], [OPEN[0], OPEN[2]]
    silent = cluster.master_of(victim)
    replica = cluster.replica_of(silent)
    with Traffic(deployment.apps, pki, list(OPEN)) as traffic:
        traffic.wait_for(victim, {OK}, after=time.monotonic())
        replica.pause()
        silent.pause()
        stopped = time.monotonic()
        try:
            traffic.wait_for(victim, UNAVAILABLE, after=stopped)
        finally:
            silent.resume()
            replica.resume()
        until(cluster.healthy, within=WAIT, what="the cluster is whole again")
        settled = traffic.recovers(victim, promoted=time.monotonic())
    for endpoint in healthy:
        assert set(traffic.of(endpoint)) == {OK}, (endpoint, Counter(traffic.of(endpoint)))
        assert traffic.of(endpoint, after=stopped)
    assert set(traffic.of(victim)) <= {OK, *UNAVAILABLE}, Counter(traffic.of(victim))
    assert set(traffic.of(victim, after=settled)) == {OK}


def no_master_for(victim: str, healthy: list[str], uri: str) -> None:
    """In this process, with no master for ``victim``'s slot: its replay claims are refused
    (StoreUnavailable: 503, never a 500) whatever RATE_LIMIT_FAILURE, its rate falls back on the
    failure mode (``local``: counted here); the other endpoints are served by Redis."""
    store = RedisReplayStore(uri)
    with pytest.raises(StoreUnavailable):
        store.claim(replay_key(victim, new_id()), 60)
    limiter = RateLimiter(uri, failure=RateLimitFailure.LOCAL)
    one = parse_rates("1/minute", "RATE")
    assert limiter.hit(victim, "someone", one) is None
    assert limiter.hit(victim, "someone", one) is not None  # the local count refuses
    for endpoint in healthy:
        assert store.claim(replay_key(endpoint, new_id()), 60)


def test_a_dead_master_takes_out_only_the_endpoints_it_serves(
    deployment: Deployment, pki: TestPki
) -> None:
    """A master killed under steady traffic on every endpoint (RATE_LIMIT_FAILURE = "deny"),
    its replica held off until the failure mode is seen: the endpoints whose slots the two
    other masters serve answer 200 throughout, never a 503; the dead master's endpoint answers
    503 until its replica takes over, then 200 again; never a 500 anywhere. (The last test of
    the module: the cluster is left with one replica fewer.)"""
    cluster = deployment.cluster
    victim, *healthy = OPEN
    with Traffic(deployment.apps, pki, list(OPEN)) as traffic:
        traffic.wait_for(victim, {OK}, after=time.monotonic())
        dead = cluster.master_of(victim)
        replica = cluster.replica_of(dead)
        replica.pause()
        try:
            dead.kill()
            killed = time.monotonic()
            traffic.wait_for(victim, UNAVAILABLE, after=killed)
            no_master_for(victim, healthy, cluster.uri)
        finally:
            replica.resume()
        until(
            lambda: cluster.master_of(victim).port == replica.port,
            within=WAIT,
            what="the replica takes over the dead master's slots",
        )
        settled = traffic.recovers(victim, promoted=time.monotonic())
    for endpoint in healthy:
        outcomes = traffic.of(endpoint)
        assert set(outcomes) == {OK}, (endpoint, Counter(outcomes))
        assert traffic.of(endpoint, after=killed)  # asked while the master was dead
    outcomes = traffic.of(victim)
    assert set(outcomes) <= {OK, *UNAVAILABLE}, Counter(outcomes)
    assert set(traffic.of(victim, after=settled)) == {OK}
    # Exact limits after the failover, on the new master as on the others.
    for endpoint in LATER:
        exactly_the_limit(deployment.apps, pki, endpoint, LIMIT)
