"""A signed, rated delivery costs one Redis command: rate windows and replay claim in one
script. Counted by the server (MONITOR) on a redis-server of the test's own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from hookshield.core.signatures import sign_v1
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.redis_topologies import Node, commands_sent, redis_node

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "/hooks/payments/"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with redis_node(tmp_path_factory.mktemp("round-trip") / "redis") as node:
        yield node


@pytest.fixture
def uri(settings: Any, pki: TestPki, node: Node) -> str:
    uri = f"redis://127.0.0.1:{node.port}/0"
    settings.HOOKSHIELD = guard_config(
        pki,
        RATE_LIMIT_STORAGE=uri,
        REPLAY_STORAGE=uri,
        ENDPOINTS={
            "payments": {
                "ALLOW": [ALLOWED],
                "RATE": ["100/minute", "1000/hour"],
                "SIGNING_SECRETS": [SECRET],
            }
        },
    )
    return uri


def headers(pki: TestPki, msg_id: str, body: bytes, secret: str = SECRET) -> dict[str, Any]:
    stamp = int(time.time())
    return {
        "HTTP_X_SSL_CLIENT_CERT": encodings.nginx_escaped(pki.allowed.certificate),
        "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS",
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(stamp),
        "HTTP_WEBHOOK_SIGNATURE": sign_v1(secret, msg_id, stamp, body),
    }


def deliver(pki: TestPki, msg_id: str, body: bytes = b"{}", **options: Any) -> int:
    response = Client().post(
        URL, data=body, content_type="application/json", **headers(pki, msg_id, body, **options)
    )
    return response.status_code


def counted(node: Node, pki: TestPki, msg_id: str, **options: Any) -> tuple[int, list[str]]:
    with commands_sent(node) as sent:
        status = deliver(pki, msg_id, **options)
    return status, sent


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def test_a_signed_rated_delivery_is_one_command(uri: str, node: Node, pki: TestPki) -> None:
    assert deliver(pki, new_id()) == 200  # connects (HELLO), sends the script (EVAL) once
    assert counted(node, pki, new_id()) == (200, ["EVALSHA"])


def test_a_node_without_the_script_is_sent_its_source_once(
    uri: str, node: Node, pki: TestPki
) -> None:
    """As after a restart or on a promoted replica: EVAL on that node alone (redis-py's
    SCRIPT LOAD goes to every master of a cluster, where one unreachable would fail all)."""
    assert deliver(pki, new_id()) == 200
    node.client().script_flush()
    assert counted(node, pki, new_id()) == (200, ["EVALSHA", "EVAL"])
    assert counted(node, pki, new_id()) == (200, ["EVALSHA"])


def test_connections_the_server_closed_meanwhile_are_made_again(
    uri: str, node: Node, pki: TestPki
) -> None:
    """The guard sends its command on a connection of the client's pool; one Redis closed while
    it sat in the pool (a restart, an idle timeout, CLIENT KILL) is made again when it is taken
    out, so the next delivery is served, in one command, rather than refused as an outage."""
    assert deliver(pki, new_id()) == 200  # a connection in the pool
    admin = node.client()
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    status, sent = counted(node, pki, new_id())
    assert status == 200
    assert sent[0] == "HELLO"  # a new connection...
    assert [c for c in sent if c.startswith("EVAL")] == ["EVALSHA"]  # ...and the one command


def test_a_replay_is_refused_in_that_one_command(uri: str, node: Node, pki: TestPki) -> None:
    msg_id = new_id()
    assert deliver(pki, msg_id) == 200
    assert counted(node, pki, msg_id) == (409, ["EVALSHA"])


def test_a_delivery_that_fails_verification_gives_its_id_back(
    uri: str, node: Node, pki: TestPki
) -> None:
    """The id is claimed with the rate count, before the signature is checked: a forged
    delivery must not keep the real one out."""
    assert deliver(pki, new_id()) == 200  # connected, script loaded
    forged = "whsec_" + "A" * 32
    # The give-back deletes the claim while it holds its token: a script too, which the first
    # give-back on a node sends by its source (the delivery's own script reloaded here).
    node.client().script_flush()
    assert deliver(pki, new_id()) == 200
    first = counted(node, pki, new_id(), secret=forged)
    assert first == (401, ["EVALSHA", "EVALSHA", "EVAL"])
    msg_id = new_id()
    status, commands = counted(node, pki, msg_id, secret=forged)
    assert (status, commands) == (401, ["EVALSHA", "EVALSHA"])  # count and claim, give-back
    assert deliver(pki, msg_id) == 200
    assert deliver(pki, msg_id) == 409


def unsigned(pki: TestPki) -> int:
    response = Client().post(
        URL,
        data=b"{}",
        content_type="application/json",
        HTTP_X_SSL_CLIENT_CERT=encodings.nginx_escaped(pki.allowed.certificate),
        HTTP_X_SSL_CLIENT_VERIFY="SUCCESS",
    )
    return response.status_code


def test_an_unsigned_rated_request_counts_every_limit_in_one_command(
    uri: str, node: Node, pki: TestPki
) -> None:
    # Connects and loads the script of this shape (the endpoint's limits, no claim): each
    # shape has its own, loaded by the first request that needs it.
    assert unsigned(pki) == 401
    with commands_sent(node) as sent:
        status = unsigned(pki)
    assert status == 401  # signature_missing, after the rate count
    assert sent == ["EVALSHA"]
