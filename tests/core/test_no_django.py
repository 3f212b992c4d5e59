"""The core stays framework-free: it imports with Django made unimportable."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import importlib.abc, pkgutil, sys

class NoDjango(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith("django."):
            raise ImportError("django is blocked in this test")
        return None

sys.meta_path.insert(0, NoDjango())
import hookshield.core, hookshield.pki
for info in pkgutil.walk_packages(hookshield.core.__path__, "hookshield.core."):
    __import__(info.name)
import hookshield.pki.encodings
assert not any(m == "django" or m.startswith("django.") for m in sys.modules), "django imported"
print("ok")
"""


def test_core_imports_without_django() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
