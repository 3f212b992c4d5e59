"""Shared fixtures: a throwaway PKI per test session, guard settings built on it, clean env."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from hookshield.core.certs import PresentedChain
from hookshield.pki import CertificateAuthority, IssuedCertificate, self_signed_copy

DAY = dt.timedelta(days=1)
ALLOWED = "spiffe://corp.example/payments-gateway"
GITHUB_SECRET = "It's a Secret to Everybody"  # the integration project's GitHub-style receiver
OTHER = "spiffe://corp.example/reporting"
VIA_INTERMEDIATE = "spiffe://corp.example/billing"

_TLS_ENV = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def require_service(reason: str) -> None:
    """Skip with the reason on a laptop; fail in CI, where every service must be present."""
    if os.environ.get("HOOKSHIELD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing (HOOKSHIELD_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


# Secrets planted in payloads, headers, exceptions and log calls across the suite; the session
# fails if any of them reaches a log line (see _no_planted_secret_in_any_log).
PLANTED = {
    "card": "4111 1111 1111 1111",
    "card_digits": "4111111111111111",
    "whsec": "whsec_cGxhbnRlZC1zZWNyZXQtZm9yLWxvZy1zY2FuLTEyMzQ=",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.cGxhbnRlZA.c2lnbmF0dXJlLXBsYW50ZWQ",
    "aws": "AKIAPLANTEDEXAMPLE01",
    "private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7planted",
    "redact_key_value": "s3cr3t-pl4nted-v4lue",
}
LOG_FILES: list[Path] = []  # log files of servers the tests start (gunicorn apps)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        self.lines.append(self.format(record) + " " + repr(extras))


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


@pytest.fixture(scope="session", autouse=True)
def _no_planted_secret_in_any_log() -> Iterator[None]:
    """Every log line the suite produces, from any logger, and the servers' log files."""
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    hookshield = logging.getLogger("hookshield")
    previous = hookshield.level
    hookshield.setLevel(logging.DEBUG)  # INFO decisions too
    try:
        yield
    finally:
        root.removeHandler(collect)
        hookshield.setLevel(previous)
    texts = collect.lines + [p.read_text(errors="replace") for p in LOG_FILES if p.exists()]
    leaks = sorted({name for name, secret in PLANTED.items() for text in texts if secret in text})
    assert not leaks, f"planted secrets reached the logs: {leaks}"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _TLS_ENV:
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class TestPki:
    """Every certificate the tests need, and their files under ``directory``."""

    __test__ = False  # not a test class, despite the name

    directory: Path
    root: CertificateAuthority
    intermediate: CertificateAuthority
    stranger_ca: CertificateAuthority
    allowed: IssuedCertificate
    other: IssuedCertificate
    via_intermediate: IssuedCertificate
    expired: IssuedCertificate
    not_yet_valid: IssuedCertificate
    revoked: IssuedCertificate
    long_lived: IssuedCertificate
    rogue: IssuedCertificate
    foreign: IssuedCertificate
    server: IssuedCertificate
    named: IssuedCertificate  # the allowed SPIFFE ID with a CN and a DNS SAN beside it

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_file(self) -> Path:
        return self.directory / "root.crl"

    @property
    def intermediate_crl_file(self) -> Path:
        return self.directory / "intermediate.crl"

    def files(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"


def make_pki(directory: Path) -> TestPki:
    now = dt.datetime.now(dt.UTC)
    # A root older than every certificate below it, as real ones are (expired leaves included).
    root = CertificateAuthority.create("hookshield test root CA", not_before=now - 365 * DAY)
    intermediate = root.intermediate("hookshield test intermediate CA")
    stranger = CertificateAuthority.create("someone else's CA")
    issued = {
        "allowed": root.issue_client(spiffe_id=ALLOWED),
        "other": root.issue_client(spiffe_id=OTHER),
        "via_intermediate": intermediate.issue_client(spiffe_id=VIA_INTERMEDIATE),
        "expired": root.issue_client(
            spiffe_id=ALLOWED,
            not_before=now - dt.timedelta(days=40),
            lifetime=dt.timedelta(days=30),
        ),
        "not_yet_valid": root.issue_client(
            spiffe_id=ALLOWED, not_before=now + dt.timedelta(days=2)
        ),
        "revoked": root.issue_client(spiffe_id=ALLOWED),
        "long_lived": root.issue_client(spiffe_id=ALLOWED, lifetime=dt.timedelta(days=400)),
        "foreign": stranger.issue_client(spiffe_id=ALLOWED),
        "server": root.issue_server(["127.0.0.1", "localhost"]),
        "named": root.issue_client(
            spiffe_id=ALLOWED, common_name="payments-gateway", dns_names=["payments.corp.example"]
        ),
    }
    issued["rogue"] = self_signed_copy(issued["allowed"].certificate)
    for name, cert in issued.items():
        cert.write(directory, name)
    (directory / "ca.pem").write_bytes(root.cert_pem)
    (directory / "root.crl").write_bytes(
        root.crl([issued["revoked"].certificate]).public_bytes(Encoding.PEM)
    )
    (directory / "intermediate.crl").write_bytes(intermediate.crl().public_bytes(Encoding.PEM))
    return TestPki(
        directory=directory, root=root, intermediate=intermediate, stranger_ca=stranger, **issued
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def guard_config(pki: TestPki, **overrides: Any) -> dict[str, Any]:
    """A complete HOOKSHIELD setting on the test PKI (nginx source, loopback proxy)."""
    config: dict[str, Any] = {
        "CERT_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "TRUST_ANCHORS": [str(pki.ca_file)],
        "ENDPOINTS": {"payments": {"ALLOW": [ALLOWED, VIA_INTERMEDIATE]}},
    }
    config.update(overrides)
    return config


@pytest.fixture
def guarded(settings: Any, pki: TestPki) -> dict[str, Any]:
    """Apply ``guard_config``; tests may reassign ``settings.HOOKSHIELD`` for variations."""
    settings.HOOKSHIELD = guard_config(pki)
    return dict(settings.HOOKSHIELD)


def der(cert: Any) -> bytes:
    return bytes(cert.public_bytes(Encoding.DER))


def presented(issued: IssuedCertificate, *, with_chain: bool = True) -> PresentedChain:
    """What a terminator would hand over for this client: the leaf, and its intermediates."""
    certs = [issued.certificate, *(issued.intermediates if with_chain else ())]
    return PresentedChain(tuple(der(c) for c in certs), "test")


REDIS_URL = os.environ.get("HOOKSHIELD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session", autouse=True)
def _postgresql_reachable() -> None:
    """Under HOOKSHIELD_TEST_DATABASE=postgresql the server must answer (else skip; CI: fail)."""
    if os.environ.get("HOOKSHIELD_TEST_DATABASE") != "postgresql":
        return
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], connect_timeout=2
        ).close()
    except psycopg.Error as exc:
        require_service(f"PostgreSQL is not reachable at {db['HOST']}:{db['PORT']} ({exc})")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the tests use (a database of its own; keys are unique per test)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        require_service(f"Redis is not reachable at {REDIS_URL} ({exc})")
    return REDIS_URL


@pytest.fixture
def unique() -> str:
    """A name no other test (or earlier run) uses, for endpoint names and Redis keys."""
    import uuid

    return "t" + uuid.uuid4().hex[:12]
