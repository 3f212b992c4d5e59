"""The demo project: one business webhook, exposed naive and shielded (``hookshield demo``)."""

import os
from pathlib import Path

DEMO_DIR = Path(os.environ["HOOKSHIELD_DEMO_DIR"])

SECRET_KEY = os.environ["HOOKSHIELD_DEMO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = ["hookshield.django"]
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
ROOT_URLCONF = "hookshield.demo.project.urls"
DATABASES: dict[str, dict[str, str]] = {}

HOOKSHIELD = {
    # hookshield serve terminates mutual TLS itself: no proxy, no header anyone could forge.
    "CERT_SOURCE": "asgi-tls",
    "TRUST_ANCHORS": [str(DEMO_DIR / "ca.pem")],
    "REPLAY_STORAGE": "memory://",  # one process; use redis:// with several
    "ENDPOINTS": {
        "payments": {
            "ALLOW": ["spiffe://demo.hookshield.test/payments-gateway"],
            "RATE": "30/minute",
            "MAX_BODY": 65536,
            "SCHEMA": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string"}, "amount": {"type": "integer"}},
            },
            "SIGNING_SECRETS": [os.environ["HOOKSHIELD_DEMO_SIGNING_SECRET"]],
        },
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "file": {"class": "logging.FileHandler", "filename": str(DEMO_DIR / "decisions.log")}
    },
    "loggers": {"hookshield": {"handlers": ["file"], "level": "INFO", "propagate": False}},
}
