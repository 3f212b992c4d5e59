"""Chunked deliveries (``Transfer-Encoding: chunked``, no ``Content-Length``) on real servers:
gunicorn (WSGI) straight from a trusted peer, and hookshield serve (uvicorn, ASGI) over mTLS.
Under the limit the view gets the exact bytes; over it the answer is 413."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.servers import App, gunicorn_app, mtls_client, serve_with_test_pki

pytestmark = pytest.mark.integration

MAX_BODY = 4096


def config(pki: TestPki, **overrides: Any) -> dict[str, Any]:
    return guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "MAX_BODY": MAX_BODY}}, **overrides
    )


@pytest.fixture(scope="module")
def gunicorn(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with gunicorn_app(tmp_path_factory.mktemp("chunked-gunicorn"), config(pki)) as app:
        yield app


@pytest.fixture(scope="module")
def uvicorn(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with serve_with_test_pki(tmp_path_factory.mktemp("chunked-serve"), config(pki), pki) as app:
        yield app


def chunks(body: bytes, size: int = 700) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def payload(size: int) -> bytes:
    padding = "x" * max(0, size - len('{"type": "paid", "pad": ""}'))
    return json.dumps({"type": "paid", "pad": padding}, separators=(", ", ": ")).encode()


def over_gunicorn(
    pki: TestPki, app: App, body: bytes, path: str = "/hooks/payments/"
) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
    }
    return httpx.post(
        f"http://127.0.0.1:{app.port}{path}",
        content=chunks(body),
        headers=headers,
        timeout=30,
    )


def over_uvicorn(pki: TestPki, app: App, body: bytes) -> httpx.Response:
    with mtls_client(pki, "allowed") as client:
        return client.post(
            f"https://127.0.0.1:{app.port}/hooks/payments/",
            content=chunks(body),
            headers={"Content-Type": "application/json"},
        )


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_a_chunked_delivery_under_the_limit_arrives_whole(
    request: pytest.FixtureRequest, pki: TestPki, server: str
) -> None:
    app = request.getfixturevalue(server)
    body = payload(MAX_BODY - 100)
    send = over_gunicorn if server == "gunicorn" else over_uvicorn
    response = send(pki, app, body)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["body_length"] == len(body)
    assert seen["json"] == json.loads(body)


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_a_chunked_delivery_over_the_limit_is_413(
    request: pytest.FixtureRequest, pki: TestPki, server: str
) -> None:
    app = request.getfixturevalue(server)
    send = over_gunicorn if server == "gunicorn" else over_uvicorn
    response = send(pki, app, payload(MAX_BODY + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_drf_parses_a_chunked_delivery_whole_under_gunicorn(gunicorn: App, pki: TestPki) -> None:
    body = payload(MAX_BODY - 100)
    response = over_gunicorn(pki, gunicorn, body, "/drf/payments/")
    assert response.status_code == 200, response.text
    assert response.json()["drf_data"]["data"] == json.loads(body)


@pytest.mark.parametrize(
    "framing",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # a chunk size that is no number
        b"2\r\n{}XX0\r\n\r\n",  # a chunk without its CRLF
        b"5\r\n{}",  # the connection ends inside a chunk
    ],
)
def test_broken_chunked_framing_is_400_malformed_body_under_gunicorn(
    gunicorn: App, pki: TestPki, framing: bytes
) -> None:
    head = (
        "POST /hooks/payments/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        f"X-SSL-Client-Cert: {encodings.nginx_escaped(pki.allowed.certificate)}\r\n"
        "X-SSL-Client-Verify: SUCCESS\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=30) as connection:
        connection.sendall(head + framing)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    if status == 400 and b"application/json" in answer:
        assert b'"malformed_body"' in answer
    else:  # gunicorn itself may refuse the framing before Django runs
        assert status == 400, answer[:300]
