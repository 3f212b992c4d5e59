"""The README's intermediate CA recipe, run as printed: ``pki init --intermediate``, a client
issued ``--via-intermediate``, ``proxy-config nginx`` (with ``--intermediates``, or a chain file
as ``--client-ca``) and the settings it prints, real nginx in front of gunicorn."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookshield.demo.processes import free_ports
from tests.integration.servers import REPO, App, find_binary, gunicorn_app, serving
from tests.integration.test_proxy_config import NGINX_WRAPPER

pytestmark = pytest.mark.integration

BILLING = "spiffe://corp.example/billing"


def hookshield(*args: str) -> None:
    """The CLI as a user runs it."""
    subprocess.run(
        [sys.executable, "-m", "hookshield", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


@dataclass(frozen=True)
class Recipe:
    ca: Path
    port: int
    app: App
    with_intermediates: bool


def printed_settings(settings_text: str) -> dict[str, Any]:
    """The HOOKSHIELD dict exactly as printed, with the endpoint the user fills in."""
    namespace: dict[str, Any] = {}
    exec(settings_text, namespace)  # noqa: S102  (our own CLI's output, in a test)
    config = dict(namespace["HOOKSHIELD"])
    config["ENDPOINTS"] = {"payments": {"ALLOW": [BILLING]}}
    return config


@pytest.fixture(scope="module", params=["with --intermediates", "a chain file", "without"])
def recipe(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recipe]:
    binary = find_binary("nginx")
    base = tmp_path_factory.mktemp("intermediate-recipe")
    ca = base / "ca"
    hookshield("pki", "init", str(ca), "--intermediate")
    hookshield("pki", "issue", str(ca), "billing", "--spiffe-id", BILLING, "--via-intermediate")
    hookshield("pki", "issue", str(ca), "server", "--server", "127.0.0.1")
    app_port, listen = free_ports(2)
    with_intermediates = request.param != "without"
    client_ca = ca / "ca.pem"
    extra: list[str] = []
    if request.param == "with --intermediates":
        extra = ["--intermediates", str(ca / "intermediate.pem")]
    elif request.param == "a chain file":
        client_ca = ca / "chain.pem"
        client_ca.write_bytes((ca / "intermediate.pem").read_bytes() + (ca / "ca.pem").read_bytes())
    config_path = base / "hookshield.conf"
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "hookshield",
            "proxy-config",
            "nginx",
            "--upstream",
            f"127.0.0.1:{app_port}",
            "--client-ca",
            str(client_ca),
            *extra,
            "--cert",
            str(ca / "server.pem"),
            "--key",
            str(ca / "server.key"),
            "--listen",
            str(listen),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    config_path.write_text(generated.stdout)
    settings_text = generated.stderr
    with gunicorn_app(base / "app", printed_settings(settings_text)) as app:
        config_path.write_text(
            config_path.read_text().replace(f"127.0.0.1:{app_port}", f"127.0.0.1:{app.port}")
        )
        (base / "nginx.conf").write_text(NGINX_WRAPPER.format(prefix=base, conf=base))
        command = [binary, "-p", str(base), "-c", str(base / "nginx.conf")]
        with serving(
            command, output=base / "nginx.log", ports=[listen], stop_signal=signal.SIGQUIT
        ):
            yield Recipe(ca, listen, app, with_intermediates)


def deliver(recipe: Recipe) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(recipe.ca / "ca.pem"))
    # billing.pem holds the leaf and the intermediate: the client presents its chain.
    context.load_cert_chain(recipe.ca / "billing.pem", recipe.ca / "billing.key")
    with httpx.Client(verify=context, timeout=10) as client:
        return client.post(
            f"https://127.0.0.1:{recipe.port}/hooks/payments/",
            content=b'{"type": "paid"}',
            headers={"Content-Type": "application/json"},
        )


def test_the_recipe_admits_the_client_issued_by_the_intermediate(recipe: Recipe) -> None:
    response = deliver(recipe)
    if recipe.with_intermediates:
        assert response.status_code == 200
        assert response.json()["identity"] == BILLING
        return
    # Without --intermediates the guard cannot build the path from the leaf nginx forwards, and
    # the decision line says which CA certificate is missing.
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "client_cert_untrusted"
    assert any(
        "issuer" in line and "is in neither TRUST_ANCHORS nor INTERMEDIATES" in line
        for line in recipe.app.decisions()
    ), recipe.app.decisions()
