"""Real servers for integration tests: gunicorn serving the test project, nginx and HAProxy.

Each is started the way an operator starts it (its own config file, foreground process, a
prefix in a temporary directory, loopback ports) and stopped in the fixture's teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import LOG_FILES, require_service

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the port accepts connections; fail with the server's own log if it exits or stalls."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"server did not listen on {port} within {STARTUP_SECONDS}s:\n{log.read_text()}"
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/local/sbin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    require_service(f"{name} is not installed (Debian: apt-get install {name})")
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class App:
    """A running gunicorn serving ``tests.integration.project`` on 127.0.0.1."""

    port: int
    log: Path

    def decisions(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@contextmanager
def gunicorn_app(
    directory: Path, hookshield: dict[str, Any], *, workers: int = 2, debug: bool = False
) -> Iterator[App]:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "hookshield.json"
    config.write_text(json.dumps(hookshield))
    log = directory / "hookshield.log"
    server_log = directory / "gunicorn.log"
    LOG_FILES.extend((log, server_log))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.project.settings",
        "HOOKSHIELD_TEST_CONFIG": str(config),
        "HOOKSHIELD_TEST_LOG": str(log),
        "PYTHONPATH": str(REPO),
        "HOOKSHIELD_TEST_DEBUG": "1" if debug else "0",
    }
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
        "tests.integration.project.wsgi:application",
    ]
    with server_log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, server_log)
        yield App(port, log)
    finally:
        stop(process)


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
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.project.settings",
        "HOOKSHIELD_TEST_CONFIG": str(config),
        "HOOKSHIELD_TEST_LOG": str(log),
        "PYTHONPATH": str(REPO),
        "HOOKSHIELD_TEST_DEBUG": "0",
    }
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
    with server_log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, server_log)
        yield App(port, log)
    finally:
        stop(process, signal.SIGINT)


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
    ports = [free_port() for _ in servers]
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
        )
        for port, spec in zip(ports, servers, strict=True)
    )
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(prefix=directory, servers=blocks))
    log = directory / "error.log"
    log.touch()
    with (directory / "stderr.log").open("wb") as out:
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        for port in ports:
            wait_for_port(port, process, log)
        yield ports
    finally:
        stop(process, signal.SIGQUIT)


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
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log)
        yield port
    finally:
        stop(process, signal.SIGUSR1)
