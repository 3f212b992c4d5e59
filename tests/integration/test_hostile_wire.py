"""Hostile requests over the wire, through real gunicorn (certificate headers from a trusted
peer) and hookshield serve (uvicorn, mTLS): whatever bytes arrive, the answer is a decision,
never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.servers import App, gunicorn_app, mtls_client, serve_with_test_pki

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# What HTTP/1.1 lets through in a header value: visible ASCII, spaces, and obs-text (latin-1).
FIELD = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
).map(str.strip)
WIRE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PATHS = ["/hooks/payments/", "/drf/payments/"]


def config(pki: TestPki, **overrides: Any) -> dict[str, Any]:
    endpoint = {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET], "MAX_BODY": 2048}
    return guard_config(pki, ENDPOINTS={"payments": endpoint}, **overrides)


@pytest.fixture(scope="module")
def gunicorn(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with gunicorn_app(tmp_path_factory.mktemp("wire-gunicorn"), config(pki)) as app:
        yield app


@pytest.fixture(scope="module")
def uvicorn(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with serve_with_test_pki(tmp_path_factory.mktemp("wire-serve"), config(pki), pki) as app:
        yield app


def hostile_headers(draw: st.DrawFn, pki: TestPki, *, certificate_headers: bool) -> dict[str, Any]:
    valid = encodings.nginx_escaped(pki.allowed.certificate)
    headers: dict[str, Any] = {
        "Content-Type": draw(st.sampled_from(["application/json", ""]) | FIELD),
        "webhook-id": draw(FIELD),
        "webhook-timestamp": draw(st.sampled_from(["1700000000", ""]) | FIELD),
        "webhook-signature": draw(st.sampled_from(["v1,AAAA", ""]) | FIELD),
    }
    if certificate_headers:
        headers["X-SSL-Client-Cert"] = draw(st.sampled_from([valid, ""]) | FIELD)
        headers["X-SSL-Client-Verify"] = draw(st.sampled_from(["SUCCESS", ""]) | FIELD)
    return {name: value.encode("latin-1") for name, value in headers.items() if value}


@st.composite
def requests(draw: st.DrawFn, pki: TestPki, *, certificate_headers: bool) -> dict[str, Any]:
    return {
        "method": draw(st.sampled_from(["POST", "PUT", "GET"])),
        "url": draw(st.sampled_from(PATHS)),
        "headers": hostile_headers(draw, pki, certificate_headers=certificate_headers),
        "content": draw(st.binary(max_size=400) | st.sampled_from([b"{}", b'{"a": 1, "a": 2}'])),
    }


def assert_decided(response: httpx.Response) -> None:
    """A decision: never a 5xx, and never the last guard's answer to a bug in a step."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.headers.get("content-type") == "application/json":
        assert response.json().get("error", {}).get("code") != "request_unprocessable"


@WIRE
@given(data=st.data())
def test_gunicorn_answers_any_request_with_a_decision(
    gunicorn: App, pki: TestPki, data: st.DataObject
) -> None:
    request = data.draw(requests(pki, certificate_headers=True))
    url = f"http://127.0.0.1:{gunicorn.port}{request.pop('url')}"
    response = httpx.request(url=url, timeout=30, **request)
    assert_decided(response)


@WIRE
@given(data=st.data())
def test_uvicorn_answers_any_request_with_a_decision(
    uvicorn: App, pki: TestPki, data: st.DataObject
) -> None:
    request = data.draw(requests(pki, certificate_headers=False))
    url = f"https://127.0.0.1:{uvicorn.port}{request.pop('url')}"
    with mtls_client(pki, "allowed", timeout=30) as client:
        response = client.request(url=url, **request)
    assert_decided(response)
