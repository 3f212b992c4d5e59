"""`pip install hookshield` is the guard alone: no scanner, server or Redis dependency.

The guard (settings, checks, decorator, the whole request path) runs with the command line's
and Redis's libraries made unimportable; a command that needs them says which extra to install.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI_ONLY = ("httpx", "rich", "uvicorn", "yaml", "redis")

PROGRAM = """
import importlib.abc, io, os, sys
BLOCKED = {blocked!r}

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocked())
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django.test import RequestFactory, override_settings
from hookshield.core.pipeline import Guard
from hookshield.django.guard import get_guard, check_request

assert isinstance(get_guard(), Guard)
request = RequestFactory().post("/hooks/payments/", data=b"{{}}", content_type="application/json")
print("decision", check_request(request, "payments").code)

with override_settings(HOOKSHIELD={{"REPLAY_STORAGE": "redis://127.0.0.1:6379/0",
        "ENDPOINTS": {{"p": {{"ALLOW": ["dns:a.example"], "SIGNING_SECRETS":
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}}}}}}):
    print("redis", get_guard().reason)

from hookshield.cli import main
print("scan", main(["scan", "https://hooks.example.test/"]))
print("pki", main(["pki", "init", os.environ["CA_DIR"]]))
print("send", main(["send", "https://hooks.example.test/"]))
out, sys.stdout = sys.stdout, io.StringIO()
secret = main(["secret"]), sys.stdout.getvalue()
sys.stdout = out
print("secret", secret[0], secret[1].startswith("whsec_"))
leaked = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
print("imported", leaked)
"""


def test_the_base_dependencies_are_the_guard_s_own() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("<")[0].split("=")[0] for dep in project["dependencies"]}
    assert names == {"cryptography", "django", "jsonschema", "limits"}
    assert project["optional-dependencies"]["cli"] == [
        "httpx>=0.27",
        "pyyaml>=6",
        "rich>=13",
        "uvicorn>=0.30",
    ]
    assert project["optional-dependencies"]["redis"] == ["redis[hiredis]>=6"]


def test_the_guard_runs_without_the_extras_and_commands_name_theirs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(blocked=CLI_ONLY)],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "CA_DIR": str(tmp_path / "ca")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["decision"] == "client_cert_missing"  # the request path ran to a decision
    assert "pip install 'hookshield[redis]'" in lines["redis"]
    assert lines["scan"] == "2"
    assert "hookshield scan needs the command-line extra: pip install 'hookshield[cli]'" in (
        result.stderr
    )
    assert lines["pki"] == "0"  # pki and secret need nothing more
    assert lines["secret"] == "0 True"
    assert lines["send"] == "2"
    assert "hookshield send needs the command-line extra" in result.stderr
    assert lines["imported"] == "[]"
