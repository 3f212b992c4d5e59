"""The generated nginx and HAProxy configurations, run for real in front of gunicorn: forged
certificate headers never reach Django as believed identities."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hookshield.core.headers import CERTIFICATE_HEADERS
from hookshield.demo.processes import free_port
from hookshield.pki import CertificateAuthority, encodings
from hookshield.proxy_config import ProxyOptions, envoy
from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.checks.auth import forged_headers
from hookshield.scanner.model import Outcome
from hookshield.scanner.profiles import ClientFiles
from tests.conftest import ALLOWED, OTHER, TestPki, guard_config
from tests.integration.servers import (
    App,
    find_binary,
    gunicorn_app,
    mtls_client,
    post_json,
    serving,
)

pytestmark = pytest.mark.integration

NGINX_WRAPPER = """
# Workers as the test's user: pytest's temporary directory is private (bodies over the buffer go
# to temporary files there). Ignored, with a notice, where nginx does not start as root.
user root;
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    include {prefix}/hookshield.conf;
}}
"""


@dataclass(frozen=True)
class Proxied:
    name: str
    app: App
    port: int
    secret: str


def generate(proxy: str, pki: TestPki, upstream: int, listen: int) -> tuple[str, str]:
    """Run the CLI as a user does: config on stdout, Django settings on stderr."""
    cert, key = pki.files("server")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hookshield",
            "proxy-config",
            proxy,
            "--upstream",
            f"127.0.0.1:{upstream}",
            "--client-ca",
            str(pki.ca_file),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--listen",
            str(listen),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout, result.stderr


def secret_of(settings_text: str) -> str:
    line = next(line for line in settings_text.splitlines() if '"PROXY_SECRET"' in line)
    return line.split('"')[3]


@pytest.fixture(scope="module", params=["nginx", "haproxy"])
def proxied(
    request: pytest.FixtureRequest, pki: TestPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxied]:
    proxy = str(request.param)
    binary = find_binary(proxy)
    base = tmp_path_factory.mktemp(f"proxy-config-{proxy}")
    app_port, listen = free_port(), free_port()
    config_text, settings_text = generate(proxy, pki, app_port, listen)
    secret = secret_of(settings_text)
    source = "nginx" if proxy == "nginx" else "haproxy"
    verify = {"CERT_VERIFY_HEADER": "X-SSL-Client-Verify"} if proxy == "haproxy" else {}
    hookshield = guard_config(pki, CERT_SOURCE=source, PROXY_SECRET=secret, **verify)
    with gunicorn_app(base / "app", hookshield) as app:
        # The generated config names the upstream port it was given; point it at the app.
        config_text = config_text.replace(f"127.0.0.1:{app_port}", f"127.0.0.1:{app.port}")
        log = base / "proxy.log"
        if proxy == "nginx":
            (base / "hookshield.conf").write_text(config_text)
            (base / "nginx.conf").write_text(NGINX_WRAPPER.format(prefix=base))
            command = [binary, "-p", str(base), "-c", str(base / "nginx.conf")]
            stop_signal = signal.SIGQUIT
        else:
            cert, key = pki.files("server")
            combined = cert.with_name(f"{cert.stem}-with-key.pem")
            combined.write_bytes(cert.read_bytes() + key.read_bytes())
            (base / "haproxy.cfg").write_text(config_text)
            command = [binary, "-db", "-f", str(base / "haproxy.cfg")]
            stop_signal = signal.SIGUSR1
        with serving(command, output=log, ports=[listen], stop_signal=stop_signal):
            yield Proxied(proxy, app, listen, secret)


def post(
    pki: TestPki, proxied: Proxied, cert: str | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return post_json(pki, proxied.port, cert, headers=headers)


def test_the_allowed_identity_gets_through(proxied: Proxied, pki: TestPki) -> None:
    response = post(pki, proxied, "allowed")
    assert response.status_code == 200
    assert response.json()["identity"] == ALLOWED
    assert response.json()["secret_header_visible"] is False


def test_no_certificate_no_request(proxied: Proxied, pki: TestPki) -> None:
    if proxied.name == "haproxy":
        with pytest.raises(httpx.TransportError):  # the handshake fails
            post(pki, proxied, None)
        return
    response = post(pki, proxied, None)
    assert response.status_code == 400  # nginx: "No required SSL certificate was sent"
    assert "identity" not in response.text


# The style names (the certificate in them does not matter here).
STYLES = [
    name
    for name, _ in forged_headers(
        CertificateAuthority.create().issue_client(spiffe_id=ALLOWED).certificate
    )
]


@pytest.mark.parametrize("style", STYLES)
def test_forged_headers_of_every_style_are_never_believed(
    proxied: Proxied, pki: TestPki, style: str
) -> None:
    headers = dict(forged_headers(pki.allowed.certificate))[style]
    headers["X-Hookshield-Proxy-Secret"] = "a-guess-at-the-proxy-secret-000"
    response = post(pki, proxied, "other", headers)
    # The proxy replaced the headers with the real (other) certificate: 403 for OTHER.
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "identity_not_allowed"
    decision = json.dumps(proxied.app.decisions()[-1])
    assert OTHER in decision


def test_the_app_port_refuses_requests_around_the_proxy(proxied: Proxied, pki: TestPki) -> None:
    cert = pki.allowed.certificate
    nginx = proxied.name == "nginx"
    headers = {
        "X-SSL-Client-Cert": encodings.nginx_escaped(cert) if nginx else encodings.b64der(cert),
        "X-SSL-Client-Verify": "SUCCESS" if nginx else "0",
        "Content-Type": "application/json",
    }
    url = f"http://127.0.0.1:{proxied.app.port}/hooks/payments/"
    response = httpx.post(url, content=b"{}", headers=headers, timeout=10)
    assert response.status_code == 401  # the right address, but no secret
    response = httpx.post(
        url,
        content=b"{}",
        headers={**headers, "X-Hookshield-Proxy-Secret": proxied.secret},
        timeout=10,
    )
    assert response.status_code == 200  # only the proxy knows the secret


async def test_the_scanner_finds_no_spoofing_path(proxied: Proxied, pki: TestPki) -> None:
    report = await run_scan(
        ScanConfig(
            url=f"https://127.0.0.1:{proxied.port}/hooks/payments/",
            legit=ClientFiles(*pki.files("allowed")),
            foreign=ClientFiles(*pki.files("other")),
            ca=str(pki.ca_file),
            checks=(
                "auth.spoofed-identity-header",
                "auth.no-client-cert",
                "auth.forged-subject",
                "auth.untrusted-cert",
                "authz.foreign-identity",
                "exposure.server-banner",
            ),
        )
    )
    outcomes = {r.id: r.outcome for r in report.results}
    assert outcomes == dict.fromkeys(outcomes, Outcome.PASSED), report.to_json()


def test_the_envoy_document_has_every_safeguard(pki: TestPki) -> None:
    """Envoy is not run here (no binary from the allowed registries): its structure is checked."""
    cert, key = pki.files("server")
    options = ProxyOptions(
        upstream="127.0.0.1:8000",
        client_ca=pki.ca_file,
        cert=cert,
        key=key,
        secret="s" * 32,
        listen=8443,
    )
    text = envoy.render(options)
    assert "Not exercised by" in text
    document: dict[str, Any] = yaml.safe_load(text)
    listener = document["static_resources"]["listeners"][0]
    chain = listener["filter_chains"][0]
    manager = chain["filters"][0]["typed_config"]
    assert manager["forward_client_cert_details"] == "SANITIZE_SET"
    assert manager["set_current_client_cert_details"]["cert"] is True
    assert (
        manager["common_http_protocol_options"]["headers_with_underscores_action"] == "DROP_HEADER"
    )
    routes = manager["route_config"]
    assert set(routes["request_headers_to_remove"]) == {
        h for h in CERTIFICATE_HEADERS if h.lower() != "x-forwarded-client-cert"
    } | {"Forwarded", "X-Real-IP"}
    assert manager["use_remote_address"] is True  # X-Forwarded-For ends with the peer's address
    assert routes["request_headers_to_add"][0]["header"] == {
        "key": "X-Hookshield-Proxy-Secret",
        "value": "s" * 32,
    }
    buffer = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.buffer")
    assert buffer["typed_config"]["max_request_bytes"] == 262144
    tls = chain["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == str(
        pki.ca_file
    )


def test_the_cli_refuses_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from hookshield.cli import main

    base = ["proxy-config", "nginx", "--client-ca", "ca.pem", "--cert", "c.pem", "--key", "k.pem"]
    assert main([*base, "--upstream", "not a host"]) == 2
    assert main([*base, "--secret", "short"]) == 2
    assert "16+ characters" in capsys.readouterr().err


def _chunked(size: int) -> Iterator[bytes]:
    body = b'{"type": "paid", "pad": "' + b"y" * (size - 27) + b'"}'
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


def test_a_chunked_delivery_under_the_body_limit_arrives_whole(
    proxied: Proxied, pki: TestPki
) -> None:
    with mtls_client(pki, "allowed", timeout=30) as client:
        response = client.post(
            f"https://127.0.0.1:{proxied.port}/hooks/payments/",
            content=_chunked(20_000),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["body_length"] == 20_000


def test_a_chunked_delivery_over_the_body_limit_is_refused_at_the_proxy(
    proxied: Proxied, pki: TestPki
) -> None:
    before = len(proxied.app.decisions())
    with mtls_client(pki, "allowed", timeout=30) as client:
        response = client.post(
            f"https://127.0.0.1:{proxied.port}/hooks/payments/",
            content=_chunked(262_144 + 8192),  # proxy-config's default --max-body, and more
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert len(proxied.app.decisions()) == before  # never forwarded: the app decided nothing


SPELLINGS = {
    "as catalogued": lambda name: name,
    "lower case": str.lower,
    "upper case": str.upper,
    "underscores": lambda name: name.replace("-", "_"),
}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_no_catalogued_header_a_client_sends_reaches_the_app(
    proxied: Proxied, pki: TestPki, spelling: str
) -> None:
    forged = "forged-by-the-client"
    # One request per spelling: HAProxy refuses more than 101 header lines in one request.
    headers = [(SPELLINGS[spelling](name), forged) for name in CERTIFICATE_HEADERS]
    headers += [
        ("X-Forwarded-For", "198.51.100.7"),
        ("Forwarded", "for=198.51.100.7"),
        ("X-Real-IP", "198.51.100.7"),
    ]
    with mtls_client(pki, "allowed") as client:
        response = client.get(
            f"https://127.0.0.1:{proxied.port}/received-headers/", headers=headers
        )
    assert response.status_code == 200
    received = response.json()
    leaked = sorted(key for key, value in received.items() if forged in value)
    assert leaked == []
    # What the proxy set is its own: the connection's certificate and address.
    assert received["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert received["HTTP_X_REAL_IP"] == "127.0.0.1"
    assert "198.51.100.7" not in json.dumps(received)
