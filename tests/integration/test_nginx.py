"""The guard on real TLS: nginx (and a permissive HAProxy) terminating mTLS in front of gunicorn.

nginx verifies client certificates against a bundle wider than the app's trust anchors (the
corporate bundle a proxy typically carries), forwards the escaped PEM and its verdict, and has no
CRL: whatever the app refuses beyond that, Django refused itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookshield.pki import encodings
from tests.conftest import ALLOWED, OTHER, VIA_INTERMEDIATE, TestPki, guard_config
from tests.integration.servers import App, NginxServer, gunicorn_app, haproxy, nginx, post_json

pytestmark = pytest.mark.integration

SECRET = "integration-proxy-secret-7f3a9c1e"
BODY = b'{"type": "payment.succeeded", "id": "evt_1"}'
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Stack:
    app: App
    app_with_secret: App
    strict: int  # nginx port: ssl_verify_client optional, bundle of two CAs
    with_secret: int  # same, in front of the app that requires PROXY_SECRET
    lenient: int  # nginx port: ssl_verify_client optional_no_ca


def app_config(pki: TestPki, intermediate: Path, **extra: Any) -> dict[str, Any]:
    return guard_config(
        pki,
        INTERMEDIATES=[str(intermediate)],
        CRLS=[str(pki.crl_file), str(pki.intermediate_crl_file)],
        **extra,
    )


@pytest.fixture(scope="module")
def stack(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("nginx-stack")
    intermediate = base / "intermediate.pem"
    intermediate.write_bytes(pki.intermediate.cert_pem)
    bundle = base / "proxy-client-cas.pem"
    bundle.write_bytes(pki.root.cert_pem + pki.stranger_ca.cert_pem)
    server_cert, server_key = pki.files("server")
    with (
        gunicorn_app(base / "app", app_config(pki, intermediate)) as app,
        gunicorn_app(
            base / "app-secret", app_config(pki, intermediate, PROXY_SECRET=SECRET)
        ) as app2,
        nginx(
            base / "nginx",
            server_cert,
            server_key,
            bundle,
            [
                NginxServer(app.port),
                NginxServer(
                    app2.port,
                    extra=f'            proxy_set_header X-Hookshield-Proxy-Secret "{SECRET}";',
                ),
                NginxServer(app.port, verify_mode="optional_no_ca"),
            ],
        ) as (strict, with_secret, lenient),
    ):
        yield Stack(app, app2, strict, with_secret, lenient)


def deliver(
    pki: TestPki,
    port: int,
    cert: str | None,
    path: str = "/hooks/payments/",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return post_json(pki, port, cert, path, BODY, headers)


def code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    return str(response.json()["error"]["code"])


@pytest.mark.parametrize(
    "path", ["/hooks/payments/", "/hooks/payments-async/", "/hooks/payments-cbv/"]
)
def test_the_allowed_identity_gets_2xx(stack: Stack, pki: TestPki, path: str) -> None:
    response = deliver(pki, stack.strict, "allowed", path)
    assert response.status_code == 200
    assert response.json()["identity"] == ALLOWED


def test_another_valid_identity_gets_403(stack: Stack, pki: TestPki) -> None:
    response = deliver(pki, stack.strict, "other")
    assert response.status_code == 403
    assert code(response) == "identity_not_allowed"
    assert any(
        f"identity={OTHER}" in line and "identity_not_allowed" in line
        for line in stack.app.decisions()
    )


def test_no_certificate_gets_401(stack: Stack, pki: TestPki) -> None:
    response = deliver(pki, stack.strict, None)
    assert response.status_code == 401
    assert code(response) == "client_cert_missing"


def test_a_ca_the_proxy_trusts_but_the_app_does_not_gets_401(stack: Stack, pki: TestPki) -> None:
    # nginx says SUCCESS (the stranger CA is in its bundle); the guard re-verifies and refuses.
    response = deliver(pki, stack.strict, "foreign")
    assert response.status_code == 401
    assert code(response) == "client_cert_untrusted"


def test_a_revoked_certificate_gets_401(stack: Stack, pki: TestPki) -> None:
    # nginx has no CRL; only the guard knows the certificate is revoked.
    response = deliver(pki, stack.strict, "revoked")
    assert response.status_code == 401
    assert code(response) == "client_cert_revoked"


def test_a_chain_through_an_intermediate_ca_works(stack: Stack, pki: TestPki) -> None:
    response = deliver(pki, stack.strict, "via_intermediate")
    assert response.status_code == 200
    assert response.json()["identity"] == VIA_INTERMEDIATE


@pytest.mark.parametrize("cert", ["rogue", "expired"])
def test_nginx_itself_refuses_self_signed_copies_and_expired_certificates(
    stack: Stack, pki: TestPki, cert: str
) -> None:
    response = deliver(pki, stack.strict, cert)
    assert response.status_code == 400  # nginx's 495, shown to the client as 400


def test_a_self_signed_copy_through_a_lenient_proxy_gets_401(stack: Stack, pki: TestPki) -> None:
    # optional_no_ca lets it through with FAILED:...; the guard refuses the verdict.
    response = deliver(pki, stack.lenient, "rogue")
    assert response.status_code == 401
    assert code(response) == "client_cert_unverified"


def test_a_forged_certificate_header_through_nginx_is_not_believed(
    stack: Stack, pki: TestPki
) -> None:
    forged = {
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
    }
    # nginx overwrites both headers with what the handshake showed.
    as_other = deliver(pki, stack.strict, "other", headers=forged)
    assert as_other.status_code == 403
    assert code(as_other) == "identity_not_allowed"
    without_cert = deliver(pki, stack.strict, None, headers=forged)
    assert without_cert.status_code == 401
    assert code(without_cert) == "client_cert_missing"
    # Underscore variants map to the same META key; nginx drops them by default.
    underscored = {k.replace("-", "_"): v for k, v in forged.items()}
    sneaky = deliver(pki, stack.strict, None, headers=underscored)
    assert sneaky.status_code == 401


def forged_direct(pki: TestPki) -> dict[str, str]:
    return {
        **JSON,
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
    }


def test_a_direct_request_around_nginx_from_an_untrusted_address_is_refused(
    stack: Stack, pki: TestPki
) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=10) as c:
        response = c.post(
            f"http://127.0.0.1:{stack.app.port}/hooks/payments/",
            content=BODY,
            headers=forged_direct(pki),
        )
    assert response.status_code == 401
    assert code(response) == "client_cert_missing"
    spoofing = [
        line for line in stack.app.decisions() if line.startswith("certificate_headers_ignored")
    ]
    assert any("peer=127.0.0.2" in line for line in spoofing)


@pytest.mark.parametrize("secret", [None, SECRET[:-1] + "0", "", SECRET.upper()])
def test_a_direct_request_from_the_proxy_address_without_the_secret_is_refused(
    stack: Stack, pki: TestPki, secret: str | None
) -> None:
    headers = forged_direct(pki)
    if secret is not None:
        headers["X-Hookshield-Proxy-Secret"] = secret
    with httpx.Client(timeout=10) as c:
        response = c.post(
            f"http://127.0.0.1:{stack.app_with_secret.port}/hooks/payments/",
            content=BODY,
            headers=headers,
        )
    assert response.status_code == 401
    assert code(response) == "client_cert_missing"
    assert all(SECRET not in line for line in stack.app_with_secret.decisions())


def test_through_nginx_with_the_secret_the_allowed_identity_gets_2xx(
    stack: Stack, pki: TestPki
) -> None:
    response = deliver(pki, stack.with_secret, "allowed")
    assert response.status_code == 200
    assert response.json()["secret_header_visible"] is False


@pytest.fixture(scope="module")
def permissive_haproxy(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """HAProxy that lets every presented certificate through: only the guard stands."""
    base = tmp_path_factory.mktemp("haproxy-stack")
    server_pem = base / "server-combined.pem"
    server_pem.write_bytes(pki.server.cert_pem + pki.server.key_pem)
    config = guard_config(pki, CERT_SOURCE="haproxy")
    with (
        gunicorn_app(base / "app", config) as app,
        haproxy(
            base / "haproxy",
            server_pem,
            pki.ca_file,
            app.port,
            "verify optional crt-ignore-err all ca-ignore-err all",
        ) as port,
    ):
        yield port


@pytest.mark.parametrize(
    ("cert", "status", "expected"),
    [
        ("allowed", 200, None),
        ("expired", 401, "client_cert_expired"),
        ("not_yet_valid", 401, "client_cert_not_yet_valid"),
        ("rogue", 401, "client_cert_untrusted"),
        ("foreign", 401, "client_cert_untrusted"),
        ("other", 403, "identity_not_allowed"),
        (None, 401, "client_cert_missing"),
    ],
)
def test_behind_a_proxy_that_verifies_nothing_the_guard_still_decides(
    permissive_haproxy: int, pki: TestPki, cert: str | None, status: int, expected: str | None
) -> None:
    response = deliver(pki, permissive_haproxy, cert)
    assert response.status_code == status
    if expected is not None:
        assert code(response) == expected
