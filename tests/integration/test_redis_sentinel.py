"""Rate limits and replay claims on a real Sentinel group (one master, one replica, three
sentinels), shared by two gunicorn servers with two workers each; then the master dies."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hookshield.core.replay import RedisReplayStore, StoreUnavailable, replay_key
from tests.conftest import TestPki
from tests.integration.redis_topologies import (
    OK,
    UNAVAILABLE,
    WAIT,
    SentinelGroup,
    Traffic,
    accepted_once,
    exactly_the_limit,
    sentinel_group,
    shared_state_config,
    until,
)
from tests.integration.servers import App, gunicorn_app

pytestmark = pytest.mark.integration

LIMIT = 12


@dataclass(frozen=True)
class Deployment:
    group: SentinelGroup
    apps: list[App]


@pytest.fixture(scope="module")
def deployment(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("redis-sentinel")
    with sentinel_group(base / "sentinel") as group:
        rates = {"rated": f"{LIMIT}/minute", "later": f"{LIMIT}/minute", "open": "100000/minute"}
        config = shared_state_config(pki, group.uri, rates)
        with (
            gunicorn_app(base / "one", config, workers=2) as one,
            gunicorn_app(base / "two", config, workers=2) as two,
        ):
            yield Deployment(group, [one, two])


def test_an_exact_limit_for_four_workers(deployment: Deployment, pki: TestPki) -> None:
    exactly_the_limit(deployment.apps, pki, "rated", LIMIT)


def test_a_delivery_is_accepted_once_across_four_workers(
    deployment: Deployment, pki: TestPki
) -> None:
    accepted_once(deployment.apps, pki, "open")


def test_the_master_dies_under_traffic(deployment: Deployment, pki: TestPki) -> None:
    """No 500 at any moment; 503 (RATE_LIMIT_FAILURE = "deny", replay fails closed) while no
    master answers (the replica held off until it is seen: the sentinels find no replica to
    promote and try again later); accepted again once the sentinels have promoted the
    replica. (The last test of the module: the group is left without a
    replica.)"""
    group = deployment.group
    with Traffic(deployment.apps, pki, ["open"]) as traffic:
        traffic.wait_for("open", {OK}, after=time.monotonic())
        # Not the sentinels: one stopped and resumed sees its clock jump and waits 30 s (TILT).
        group.replica.pause()
        try:
            group.master.kill()
            killed = time.monotonic()
            traffic.wait_for("open", UNAVAILABLE, after=killed)
            with pytest.raises(StoreUnavailable):  # in this process too: 503, never a 500
                RedisReplayStore(group.uri).claim(replay_key("open", "msg_x"), 60)
        finally:
            group.replica.resume()
        until(
            lambda: group.master_port() == group.replica.port,
            within=WAIT,
            what="the sentinels promote the replica",
        )
        settled = traffic.recovers("open", promoted=time.monotonic())
    outcomes = traffic.of("open")
    assert set(outcomes) <= {OK, *UNAVAILABLE}, Counter(outcomes)
    assert set(traffic.of("open", after=settled)) == {OK}
    exactly_the_limit(deployment.apps, pki, "later", LIMIT)  # on the new master
    accepted_once(deployment.apps, pki, "open")
