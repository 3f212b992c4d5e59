"""``hookshield serve``: real mTLS handshakes, and the ASGI TLS extension reaching the guard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from hookshield.pki import encodings
from tests.conftest import ALLOWED, OTHER, TestPki, guard_config
from tests.integration.servers import App, hookshield_serve, mtls_client, post_json

pytestmark = pytest.mark.integration


def asgi_config(pki: TestPki) -> dict[str, Any]:
    return guard_config(pki, CERT_SOURCE="asgi-tls", TRUSTED_PROXIES=[])


@contextmanager
def served(pki: TestPki, factory: pytest.TempPathFactory, client_auth: str) -> Iterator[App]:
    cert, key = pki.files("server")
    with hookshield_serve(
        factory.mktemp(f"serve-{client_auth}"),
        asgi_config(pki),
        cert=cert,
        key=key,
        client_ca=pki.ca_file,
        client_auth=client_auth,
    ) as app:
        yield app


@pytest.fixture(scope="module")
def optional(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with served(pki, tmp_path_factory, "optional") as app:
        yield app


@pytest.fixture(scope="module")
def required(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with served(pki, tmp_path_factory, "required") as app:
        yield app


def post(
    pki: TestPki,
    app: App,
    cert: str | None,
    path: str = "/hooks/payments/",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return post_json(pki, app.port, cert, path, headers=headers)


@pytest.mark.parametrize(
    "path", ["/hooks/payments/", "/hooks/payments-async/", "/hooks/payments-cbv/"]
)
def test_the_allowed_identity_through_the_tls_extension(
    required: App, pki: TestPki, path: str
) -> None:
    response = post(pki, required, "allowed", path)
    assert response.status_code == 200
    assert response.json()["identity"] == ALLOWED


def test_another_identity_is_403(required: App, pki: TestPki) -> None:
    response = post(pki, required, "other")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "identity_not_allowed"
    assert any(OTHER in line for line in required.decisions())


def test_the_extension_follows_the_asgi_spec(required: App, pki: TestPki) -> None:
    with mtls_client(pki, "allowed") as c:
        tls = c.get(f"https://127.0.0.1:{required.port}/tls-scope/").json()
    assert tls["client_cert_chain"] == [encodings.pem(pki.allowed.certificate)]
    assert tls["client_cert_name"] == pki.allowed.certificate.subject.rfc4514_string()
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert tls["has_server_cert"] is True


@pytest.mark.parametrize("cert", [None, "rogue", "foreign", "expired"])
def test_required_client_auth_refuses_at_the_handshake(
    required: App, pki: TestPki, cert: str | None
) -> None:
    with pytest.raises(httpx.TransportError):
        post(pki, required, cert)


def test_optional_client_auth_lets_the_guard_answer(optional: App, pki: TestPki) -> None:
    missing = post(pki, optional, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "client_cert_missing"
    assert post(pki, optional, "allowed").status_code == 200


def test_forged_headers_are_no_way_in(optional: App, pki: TestPki) -> None:
    forged = {
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
    }
    response = post(pki, optional, None, headers=forged)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "client_cert_missing"


@pytest.mark.parametrize("cert", ["rogue", "foreign"])
def test_optional_still_verifies_what_is_presented(optional: App, pki: TestPki, cert: str) -> None:
    with pytest.raises(httpx.TransportError):
        post(pki, optional, cert)
