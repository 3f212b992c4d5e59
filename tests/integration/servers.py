"""Real servers for integration tests: gunicorn serving the test project, nginx and HAProxy.

Each is started the way an operator starts it (its own config file, foreground process, a
prefix in a temporary directory, loopback ports) and stopped in the fixture's teardown.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from hookshield.demo import processes
from hookshield.demo.processes import free_port, free_ports
from hookshield.proxy_config import check
from tests.conftest import LOG_FILES, TestPki, require_service

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0


def serving(
    command: list[str], *, output: Path, ports: list[int], **options: Any
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A server started from the repository, with time to start on a busy CI machine."""
    return processes.serving(
        command, output=output, ports=ports, within=STARTUP_SECONDS, cwd=REPO, **options
    )


def find_binary(name: str, install: str = "") -> str:
    """A terminator's binary (PATH, sbin, or beside this Python for pip-installed ones)."""
    found = check.find_binary(name)
    if found is None:
        require_service(f"{name} is not installed ({install or f'Debian: apt-get install {name}'})")
        raise AssertionError("unreachable")
    return found


@dataclass(frozen=True)
class App:
    """A running gunicorn serving ``tests.integration.project`` on 127.0.0.1."""

    port: int
    log: Path

    def decisions(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def project_env(config: Path, log: Path, *, debug: bool = False) -> dict[str, str]:
    """The environment of a server running ``tests.integration.project`` (see its settings)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.project.settings",
        "HOOKSHIELD_TEST_CONFIG": str(config),
        "HOOKSHIELD_TEST_LOG": str(log),
        "PYTHONPATH": str(REPO),
        "HOOKSHIELD_TEST_DEBUG": "1" if debug else "0",
    }


def mtls_client(pki: TestPki, cert: str | None, *, timeout: float = 10) -> httpx.Client:
    """A client trusting the test CA, presenting the test PKI's certificate `cert` (or none)."""
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    if cert is not None:
        context.load_cert_chain(*pki.files(cert))
    return httpx.Client(verify=context, timeout=timeout)


def forget_counts(redis_url: str, endpoint: str) -> None:
    """Delete an endpoint's rate-limit keys left by an earlier run (never FLUSHALL)."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"hookshield*{{{endpoint}}}*"):
        client.delete(key)


def post_json(
    pki: TestPki,
    port: int,
    cert: str | None,
    path: str = "/hooks/payments/",
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One JSON delivery over mutual TLS to 127.0.0.1:`port`."""
    with mtls_client(pki, cert) as client:
        return client.post(
            f"https://127.0.0.1:{port}{path}",
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )


@contextmanager
def gunicorn_app(
    directory: Path,
    hookshield: dict[str, Any],
    *,
    workers: int = 2,
    debug: bool = False,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[App]:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "hookshield.json"
    config.write_text(json.dumps(hookshield))
    log = directory / "hookshield.log"
    server_log = directory / "gunicorn.log"
    LOG_FILES.extend((log, server_log))
    port = free_port()
    env = project_env(config, log, debug=debug) | (env or {})
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--error-logfile",
        str(server_log),
        *args,
        "tests.integration.project.wsgi:application",
    ]
    with serving(command, output=server_log, ports=[port], env=env):
        yield App(port, log)


@contextmanager
def hookshield_serve(
    directory: Path,
    hookshield: dict[str, Any],
    *,
    cert: Path,
    key: Path,
    client_ca: Path,
    client_auth: str = "required",
) -> Iterator[App]:
    """``hookshield serve`` (uvicorn with mutual TLS) serving the test project over ASGI."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "hookshield.json"
    config.write_text(json.dumps(hookshield))
    log, server_log = directory / "hookshield.log", directory / "serve.log"
    LOG_FILES.extend((log, server_log))
    port = free_port()
    env = project_env(config, log)
    command = [
        sys.executable,
        "-m",
        "hookshield",
        "serve",
        "tests.integration.project.asgi:application",
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--client-ca",
        str(client_ca),
        "--client-auth",
        client_auth,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with serving(command, output=server_log, ports=[port], env=env, stop_signal=signal.SIGINT):
        yield App(port, log)


def serve_with_test_pki(directory: Path, hookshield: dict[str, Any], pki: TestPki) -> Any:
    """``hookshield serve`` on the test PKI (its server certificate, its CA for clients), the
    guard reading the certificate from the ASGI TLS extension."""
    cert, key = pki.files("server")
    return hookshield_serve(
        directory,
        {**hookshield, "CERT_SOURCE": "asgi-tls"},
        cert=cert,
        key=key,
        client_ca=pki.ca_file,
    )


NGINX_MAIN = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    # Bodies stay in memory (client_body_buffer_size = client_max_body_size, per server): when
    # nginx starts as root its workers run as nobody, who cannot write temp files under
    # pytest's private temporary directory.
    proxy_max_temp_file_size 0;
{servers}
}}
"""

NGINX_SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {server_cert};
        ssl_certificate_key {server_key};
        ssl_client_certificate {client_ca};
        ssl_verify_client {verify_mode};
        ssl_verify_depth 3;
        ssl_protocols {protocols};
        ssl_ciphers {ciphers};
        server_tokens {tokens};
        client_max_body_size {max_body};
        client_body_buffer_size {max_body};
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
            proxy_set_header X-SSL-Client-Verify $ssl_client_verify;
{extra}
        }}
{locations}
    }}
"""


@dataclass(frozen=True)
class NginxServer:
    app_port: int
    verify_mode: str = "optional"
    client_ca: Path | None = None
    extra: str = ""
    protocols: str = "TLSv1.2 TLSv1.3"
    ciphers: str = "HIGH:!aNULL:!MD5"
    tokens: str = "off"
    server_cert: Path | None = None
    server_key: Path | None = None
    max_body: str = "1m"
    # More location blocks; "{app_port}" in them is the app's port.
    locations: str = ""


@contextmanager
def nginx(
    directory: Path,
    server_cert: Path,
    server_key: Path,
    client_ca: Path,
    servers: list[NginxServer],
) -> Iterator[list[int]]:
    """One nginx with a TLS server per entry; yields their ports in order."""
    binary = find_binary("nginx")
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    ports = free_ports(len(servers))
    blocks = "".join(
        NGINX_SERVER.format(
            port=port,
            server_cert=spec.server_cert or server_cert,
            server_key=spec.server_key or server_key,
            client_ca=spec.client_ca or client_ca,
            verify_mode=spec.verify_mode,
            app_port=spec.app_port,
            extra=spec.extra,
            protocols=spec.protocols,
            ciphers=spec.ciphers,
            tokens=spec.tokens,
            max_body=spec.max_body,
            locations=spec.locations.replace("{app_port}", str(spec.app_port)),
        )
        for port, spec in zip(ports, servers, strict=True)
    )
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(prefix=directory, servers=blocks))
    log = directory / "error.log"
    log.touch()
    command = [binary, "-p", str(directory), "-c", str(conf)]
    with serving(
        command, output=directory / "stderr.log", log=log, ports=ports, stop_signal=signal.SIGQUIT
    ):
        yield ports


HAPROXY_CONFIG = """
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend webhooks
    bind 127.0.0.1:{port} ssl crt {server_pem} ca-file {client_ca} {verify}
    http-request del-header X-SSL-Client-Cert
    http-request set-header X-SSL-Client-Cert %[ssl_c_der,base64] if {{ ssl_c_used }}
    default_backend app
backend app
    server app 127.0.0.1:{app_port}
"""


@contextmanager
def haproxy(
    directory: Path, server_pem: Path, client_ca: Path, app_port: int, verify: str
) -> Iterator[int]:
    """HAProxy terminating TLS with ``verify`` (bind options) in front of the app."""
    binary = find_binary("haproxy")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "haproxy.cfg"
    conf.write_text(
        HAPROXY_CONFIG.format(
            port=port, server_pem=server_pem, client_ca=client_ca, verify=verify, app_port=app_port
        )
    )
    log = directory / "haproxy.log"
    with serving(
        [binary, "-db", "-f", str(conf)], output=log, ports=[port], stop_signal=signal.SIGUSR1
    ):
        yield port
