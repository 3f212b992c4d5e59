"""Django's default LOGGING, as a project whose ``LOGGING`` leaves hookshield's loggers alone
has it: Django's own ``dictConfig`` run by ``django.setup()``, in a process of its own (the
test session's logging is pytest's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hookshield.pki import encodings
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.servers import REPO, project_env

# Counts the records built on hookshield's loggers around one accepted and one refused
# delivery, through Django's test client (the request and response path of a real project).
PROGRAM = """
import json, logging, os, sys

import django

django.setup()
from django.conf import settings
from django.test import Client

built = []
make_record = logging.Logger.makeRecord


def counted(self, name, *args, **kwargs):
    if name.startswith("hookshield"):
        built.append(name)
    return make_record(self, name, *args, **kwargs)


logging.Logger.makeRecord = counted
client = Client(REMOTE_ADDR="127.0.0.1")
body = b'{"type": "payment.succeeded"}'
headers = {"X-SSL-Client-Cert": os.environ["CERT"], "X-SSL-Client-Verify": "SUCCESS"}
accepted = client.post("/hooks/limited/", body, "application/json", headers=headers)
after_accepted = len(built)
refused = client.post("/hooks/limited/", body, "application/json")
print(json.dumps({
    "configured": bool(settings.LOGGING),
    "statuses": [accepted.status_code, refused.status_code],
    "after_accepted": after_accepted,
    "built": built,
}))
"""


def test_accepted_deliveries_build_no_record_and_refusals_reach_standard_error(
    pki: TestPki, tmp_path: Path
) -> None:
    config = tmp_path / "hookshield.json"
    endpoint = {"ALLOW": [ALLOWED], "RATE": "100/minute"}
    config.write_text(json.dumps(guard_config(pki, ENDPOINTS={"limited": endpoint})))
    env = project_env(config, tmp_path / "unused.log")
    del env["HOOKSHIELD_TEST_LOG"]  # the project then keeps Django's default LOGGING
    env["CERT"] = encodings.nginx_escaped(pki.allowed.certificate)
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["configured"] is False  # no LOGGING of the project's own
    assert outcome["statuses"] == [200, 401]
    assert outcome["after_accepted"] == 0  # the accepted line: no handler, no record
    assert outcome["built"] == ["hookshield.guard"]  # the refusal's line, built once
    # ...and written by the standard library's last resort on standard error.
    lines = [line for line in result.stderr.splitlines() if "webhook_decision" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("webhook_decision endpoint=limited outcome=rejected code=")
    assert not os.path.exists(tmp_path / "unused.log")
