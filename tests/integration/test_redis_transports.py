"""The Redis URIs the README lists, each on a real redis-server: a unix socket (``redis+unix://``,
and ``unix://`` for the replay store) and TLS (``rediss://``). Exact limits and one acceptance
per delivery id through Django on each; the TLS server's certificate is verified."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from hookshield.demo.processes import free_port
from hookshield.pki import CertificateAuthority
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.redis_topologies import BODY, SECRET, redis_node, signed_headers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def socket_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("unix")
    socket = directory / "redis.sock"
    config = f"unixsocket {socket}\nunixsocketperm 700\n"
    with redis_node(directory / "redis", config):
        yield socket


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A redis-server answering TLS alone on its TLS port; the CA that issued its certificate."""
    directory = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority.create("redis test CA")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    cert, key = ca.issue_server(["127.0.0.1"]).write(directory, "server")
    port = free_port()
    config = (
        f"tls-port {port}\ntls-cert-file {cert}\ntls-key-file {key}\n"
        f"tls-ca-cert-file {ca_file}\ntls-auth-clients no\n"
    )
    with redis_node(directory / "redis", config):
        yield port, ca_file


def configure(settings: Any, pki: TestPki, rate_uri: str, replay_uri: str) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        RATE_LIMIT_STORAGE=rate_uri,
        REPLAY_STORAGE=replay_uri,
        RATE_LIMIT_FAILURE="deny",  # an unreachable storage would show as 503s, not pass
        ENDPOINTS={
            "payments": {"ALLOW": [ALLOWED], "RATE": "3/minute", "SIGNING_SECRETS": [SECRET]}
        },
    )


def post(pki: TestPki, msg_id: str) -> Any:
    return Client().post(
        "/hooks/payments/",
        data=BODY,
        content_type="application/json",
        headers=signed_headers(pki, msg_id),
    )


def deliver(pki: TestPki, msg_id: str) -> int:
    return int(post(pki, msg_id).status_code)


def exact_limit_and_one_acceptance(pki: TestPki) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    assert deliver(pki, msg_id) == 200
    assert deliver(pki, msg_id) == 409  # counted too: the rate comes first
    assert deliver(pki, f"msg_{uuid.uuid4().hex}") == 200
    assert deliver(pki, f"msg_{uuid.uuid4().hex}") == 429  # the fourth in the minute


def test_a_unix_socket_for_both(settings: Any, pki: TestPki, socket_path: Path) -> None:
    uri = f"redis+unix://{socket_path}?db=1"  # a database per test: rate windows of their own
    configure(settings, pki, uri, uri)
    exact_limit_and_one_acceptance(pki)


def test_redis_py_s_unix_spelling_for_the_replay_store(
    settings: Any, pki: TestPki, socket_path: Path
) -> None:
    configure(settings, pki, f"redis+unix://{socket_path}?db=2", f"unix://{socket_path}?db=2")
    exact_limit_and_one_acceptance(pki)


def test_tls_for_both_with_the_server_certificate_verified(
    settings: Any, pki: TestPki, tls: tuple[int, Path]
) -> None:
    port, ca_file = tls
    uri = f"rediss://127.0.0.1:{port}/3?ssl_ca_certs={ca_file}"
    configure(settings, pki, uri, uri)
    exact_limit_and_one_acceptance(pki)


def test_tls_refuses_a_server_certificate_it_cannot_verify(
    settings: Any, pki: TestPki, tls: tuple[int, Path]
) -> None:
    port, _ = tls
    configure(settings, pki, f"rediss://127.0.0.1:{port}/4", "memory://")
    response = post(pki, f"msg_{uuid.uuid4().hex}")
    assert response.status_code == 503  # deny: to the guard, a storage it cannot trust is down
    assert response.json()["error"]["code"] == "rate_limit_unavailable"


def test_tls_refuses_a_server_certificate_it_cannot_verify_for_replay_claims_too(
    settings: Any, pki: TestPki, tls: tuple[int, Path]
) -> None:
    port, _ = tls
    configure(settings, pki, "memory://", f"rediss://127.0.0.1:{port}/5")
    response = post(pki, f"msg_{uuid.uuid4().hex}")
    assert response.status_code == 503  # replay protection fails closed
    assert response.json()["error"]["code"] == "replay_store_unavailable"
