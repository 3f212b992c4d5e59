"""Django settings for the unit tests; the guard's HOOKSHIELD is set per test (see conftest)."""

import os

SECRET_KEY = "hookshield-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "hookshield.django",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
# SQLite by default; HOOKSHIELD_TEST_DATABASE=postgresql runs the same tests on the real server.
if os.environ.get("HOOKSHIELD_TEST_DATABASE") == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("HOOKSHIELD_TEST_PG_NAME", "test"),
            "USER": os.environ.get("HOOKSHIELD_TEST_PG_USER", "postgres"),
            "HOST": os.environ.get("HOOKSHIELD_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("HOOKSHIELD_TEST_PG_PORT", "5432"),
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
HOOKSHIELD = {
    "CERT_SOURCE": "nginx",
    "TRUSTED_PROXIES": ["127.0.0.1/32"],
    "ENDPOINTS": {"payments": {"ALLOW": ["spiffe://corp.example/payments-gateway"]}},
}
