"""A configuration that cannot work stops Django's start-up, naming the key at fault."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from hookshield.core.pipeline import Guard
from hookshield.django.guard import get_guard
from tests.conftest import ALLOWED, TestPki, guard_config
from tests.integration.servers import REPO, project_env

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def start() -> None:
    apps.get_app_config("hookshield").ready()


@pytest.mark.parametrize(
    ("key", "bad", "why"),
    [
        ("TRUST_ANCHORS", "missing.pem", "No such file or directory"),
        ("TRUST_ANCHORS", "garbage.pem", "holds no valid PEM or DER certificate"),
        ("INTERMEDIATES", "garbage.pem", "holds no valid PEM or DER certificate"),
        ("CRLS", "missing.crl", "No such file or directory"),
        ("CRLS", "garbage.pem", "not a PEM or DER CRL"),
    ],
)
def test_unusable_files_stop_the_start_naming_the_key(
    settings: Any, pki: TestPki, tmp_path: Path, key: str, bad: str, why: str
) -> None:
    (tmp_path / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    good = {"TRUST_ANCHORS": pki.ca_file, "INTERMEDIATES": pki.ca_file, "CRLS": pki.crl_file}
    settings.HOOKSHIELD = guard_config(pki, **{key: [str(good[key]), str(tmp_path / bad)]})
    with pytest.raises(ImproperlyConfigured) as raised:
        start()
    message = str(raised.value)
    assert message.startswith(f"HOOKSHIELD[{key!r}][1] = {str(tmp_path / bad)!r} cannot be used")
    assert why in message


@pytest.mark.parametrize("key", ["RATE_LIMIT_STORAGE", "REPLAY_STORAGE"])
def test_a_cluster_whose_nodes_cannot_be_reached_stops_the_start(
    settings: Any, pki: TestPki, key: str
) -> None:
    """The cluster client maps the slots when it is made: without a node to ask, the worker
    does not start (as on any setting it cannot use), rather than failing every request."""
    uri = "redis+cluster://127.0.0.1:1"
    endpoint = {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET], "RATE": "5/second"}
    settings.HOOKSHIELD = guard_config(pki, **{key: uri}, ENDPOINTS={"payments": endpoint})
    with pytest.raises(ImproperlyConfigured) as raised:
        start()
    assert str(raised.value).startswith(f"{key} = {uri!r} cannot be reached")


def test_a_sound_configuration_starts_with_its_guard_built(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, CRLS=[str(pki.crl_file)])
    start()
    assert isinstance(get_guard(), Guard)


def with_a_missing_anchor(
    pki: TestPki, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Python running ``args`` in the integration project, TRUST_ANCHORS naming no file."""
    config = tmp_path / "hookshield.json"
    config.write_text(json.dumps(guard_config(pki, TRUST_ANCHORS=[str(tmp_path / "gone.pem")])))
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=project_env(config, tmp_path / "hookshield.log"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_get_wsgi_application_fails_before_any_request(pki: TestPki, tmp_path: Path) -> None:
    """What gunicorn does when it loads the project: the process exits with the key named."""
    loaded = with_a_missing_anchor(pki, tmp_path, "-c", "import tests.integration.project.wsgi")
    assert loaded.returncode == 1
    assert "django.core.exceptions.ImproperlyConfigured: HOOKSHIELD['TRUST_ANCHORS'][0]" in (
        loaded.stderr
    )


def test_management_commands_report_the_same_as_system_check_errors(
    pki: TestPki, tmp_path: Path
) -> None:
    """`manage.py check` names the file (E004) instead of crashing, and fails."""
    checked = with_a_missing_anchor(pki, tmp_path, "-m", "django", "check")
    assert checked.returncode == 1
    assert "hookshield.E004" in checked.stderr
    assert "gone.pem" in checked.stderr
    assert "Traceback" not in checked.stderr


def test_e013_whatever_else_stops_the_guard_from_being_built(settings: Any, pki: TestPki) -> None:
    from hookshield.django import checks

    settings.HOOKSHIELD = guard_config(
        pki,
        REPLAY_STORAGE="db://replica",
        ENDPOINTS={"payments": {"ALLOW": ["spiffe://corp.example/x"], "SIGNING_SECRETS": [SECRET]}},
    )
    (message,) = [m for m in checks.hookshield_checks() if m.is_serious()]
    assert message.id == "hookshield.E013"
    assert (
        "HOOKSHIELD['REPLAY_STORAGE'] = 'db://replica' names no alias of DATABASES" in message.msg
    )
    settings.HOOKSHIELD = guard_config(pki)
    assert [m for m in checks.hookshield_checks() if m.is_serious()] == []
