"""Django settings for the unit tests; the guard's HOOKSHIELD is set per test (see conftest)."""

SECRET_KEY = "hookshield-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["hookshield.django"]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "tests.urls"
DATABASES: dict[str, dict[str, str]] = {}
HOOKSHIELD = {
    "CERT_SOURCE": "nginx",
    "TRUSTED_PROXIES": ["127.0.0.1/32"],
    "ENDPOINTS": {"payments": {"ALLOW": ["spiffe://corp.example/payments-gateway"]}},
}
