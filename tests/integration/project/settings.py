"""The Django project the integration tests serve under gunicorn behind nginx and HAProxy.

The guard's settings come from the JSON file named by HOOKSHIELD_TEST_CONFIG, and hookshield's
log lines go to HOOKSHIELD_TEST_LOG, so each test can start the app the way it needs and read
what the guard decided. Without HOOKSHIELD_TEST_LOG the project keeps Django's default LOGGING.
"""

import json
import os

from tests.settings import *  # noqa: F403

DEBUG = os.environ.get("HOOKSHIELD_TEST_DEBUG") == "1"
ROOT_URLCONF = "tests.integration.project.urls"
with open(os.environ["HOOKSHIELD_TEST_CONFIG"], encoding="utf-8") as config:
    HOOKSHIELD = json.load(config)
# The URLconf names these endpoints, and @webhook refuses a name the settings lack: a test's
# configuration sets the ones it exercises, the others admit the usual caller only.
HOOKSHIELD["ENDPOINTS"] = {
    name: {"ALLOW": ["spiffe://corp.example/payments-gateway"]}
    for name in ("payments", "limited", "strict")
} | HOOKSHIELD.get("ENDPOINTS", {})

if "HOOKSHIELD_TEST_LOG" in os.environ:
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": os.environ["HOOKSHIELD_TEST_LOG"]},
        },
        "loggers": {"hookshield": {"handlers": ["file"], "level": "INFO"}},
    }
