"""The default replay store (the database) across processes: two gunicorn servers with two
workers each, on the real PostgreSQL, accept one signed delivery exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from hookshield.core.signatures import sign_v1
from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config, require_service
from tests.integration.servers import REPO, App, gunicorn_app, project_env

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ON_POSTGRESQL = {"HOOKSHIELD_TEST_DATABASE": "postgresql"}


def _postgresql_reachable() -> None:
    import psycopg

    host = os.environ.get("HOOKSHIELD_TEST_PG_HOST", "127.0.0.1")
    port = os.environ.get("HOOKSHIELD_TEST_PG_PORT", "5432")
    try:
        psycopg.connect(
            host=host,
            port=port,
            user=os.environ.get("HOOKSHIELD_TEST_PG_USER", "postgres"),
            dbname=os.environ.get("HOOKSHIELD_TEST_PG_NAME", "test"),
            connect_timeout=2,
        ).close()
    except psycopg.Error as exc:
        require_service(f"PostgreSQL is not reachable at {host}:{port} ({exc})")


@pytest.fixture(scope="module")
def servers(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[App]]:
    _postgresql_reachable()
    base = tmp_path_factory.mktemp("replay-database")
    # REPLAY_STORAGE is left at its default.
    config = guard_config(
        pki, ENDPOINTS={"strict": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}}
    )
    settings_file = base / "hookshield.json"
    settings_file.write_text(json.dumps(config))
    env = project_env(settings_file, base / "migrate.log") | ON_POSTGRESQL
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "--skip-checks"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with (
        gunicorn_app(base / "one", config, workers=2, env=ON_POSTGRESQL) as one,
        gunicorn_app(base / "two", config, workers=2, env=ON_POSTGRESQL) as two,
    ):
        yield [one, two]


def delivery(pki: TestPki, msg_id: str) -> tuple[bytes, dict[str, str]]:
    body = b'{"type": "paid"}'
    stamp = int(time.time())
    return body, {
        "Content-Type": "application/json",
        "X-SSL-Client-Cert": encodings.nginx_escaped(pki.allowed.certificate),
        "X-SSL-Client-Verify": "SUCCESS",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_v1(SECRET, msg_id, stamp, body),
    }


def test_one_delivery_sent_at_once_to_every_worker_is_accepted_once(
    servers: list[App], pki: TestPki
) -> None:
    body, headers = delivery(pki, f"msg_{uuid.uuid4().hex}")
    urls = [f"http://127.0.0.1:{app.port}/hooks/strict/" for app in servers] * 12

    def send(url: str) -> int:
        return httpx.post(url, content=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        statuses = Counter(pool.map(send, urls))
    assert statuses == {200: 1, 409: len(urls) - 1}


def test_other_delivery_ids_are_each_accepted(servers: list[App], pki: TestPki) -> None:
    for app in servers:
        body, headers = delivery(pki, f"msg_{uuid.uuid4().hex}")
        url = f"http://127.0.0.1:{app.port}/hooks/strict/"
        assert httpx.post(url, content=body, headers=headers, timeout=30).status_code == 200
