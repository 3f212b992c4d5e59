from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import django
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from hookshield.django import checks
from hookshield.django.conf import get_settings
from tests import urls_drf  # noqa: F401  (its views are decorated while 'payments' is configured)
from tests.conftest import ALLOWED, TestPki, guard_config


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_a_sound_configuration_is_silent(guarded: dict[str, Any]) -> None:
    assert checks.hookshield_checks() == []


def test_e001_invalid_settings_are_reported_not_raised(settings: Any) -> None:
    settings.HOOKSHIELD = {"LONG_LIVED": "sometimes"}
    (message,) = checks.hookshield_checks()
    assert message.id == "hookshield.E001"
    assert "HOOKSHIELD['LONG_LIVED']" in message.msg


def test_e002_header_source_without_trusted_proxies(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, TRUSTED_PROXIES=[])
    assert checks.check_trusted_proxies(get_settings()) == [checks.E002]
    settings.HOOKSHIELD = guard_config(pki, CERT_SOURCE="asgi-tls", TRUSTED_PROXIES=[])
    assert checks.check_trusted_proxies(get_settings()) == []


class ServerVariables:
    """A custom source reading what the server itself set (nothing a client can send)."""

    name = "server-variables"
    forwarded = False

    def meta_keys(self) -> tuple[str, ...]:
        return ()

    def take(self, inbound: Any) -> None:
        return None


def test_e002_asks_the_source_whether_it_reads_forwarded_headers(
    settings: Any, pki: TestPki
) -> None:
    custom = "tests.django.test_checks.ServerVariables"
    settings.HOOKSHIELD = guard_config(pki, CERT_SOURCE=custom, TRUSTED_PROXIES=[])
    assert checks.check_trusted_proxies(get_settings()) == []
    assert checks.check_proxy_secret(get_settings()) == []
    ServerVariables.forwarded = True
    try:
        assert checks.check_trusted_proxies(get_settings()) == [checks.E002]
    finally:
        ServerVariables.forwarded = False


def test_w007_the_default_source_needs_a_server_that_terminates_tls(
    settings: Any, pki: TestPki
) -> None:
    config = guard_config(pki)
    del config["CERT_SOURCE"]
    settings.HOOKSHIELD = config
    assert checks.W007 in checks.hookshield_checks()
    assert "every delivery is refused with 401" in checks.W007.msg
    settings.HOOKSHIELD = guard_config(pki, CERT_SOURCE="asgi-tls")  # chosen, not defaulted
    assert checks.W007 not in checks.hookshield_checks()


def test_w008_a_header_source_without_a_proxy_secret_with_deploy(
    settings: Any, pki: TestPki
) -> None:
    settings.HOOKSHIELD = guard_config(pki)
    assert checks.W008 in checks.hookshield_deploy_checks()
    assert checks.W008 not in checks.hookshield_checks()
    settings.HOOKSHIELD = guard_config(pki, PROXY_SECRET="a-proxy-secret-of-some-length")
    assert checks.W008 not in checks.hookshield_deploy_checks()
    settings.HOOKSHIELD = guard_config(pki, CERT_SOURCE="asgi-tls")
    assert checks.W008 not in checks.hookshield_deploy_checks()


def test_w010_a_certificate_header_the_catalogue_does_not_know(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, CERT_HEADER="X-Our-Client-Cert")
    (message,) = [m for m in checks.hookshield_deploy_checks() if m.id == "hookshield.W010"]
    assert "HOOKSHIELD['CERT_HEADER'] = 'X-Our-Client-Cert'" in message.msg
    settings.HOOKSHIELD = guard_config(pki, CERT_HEADER="X-Client-Cert")
    assert checks.check_uncatalogued_headers(get_settings()) == []


def test_e008_trusting_every_address(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, TRUSTED_PROXIES=["0.0.0.0/0"])
    assert ids(checks.check_trusted_proxies(get_settings())) == ["hookshield.E008"]


def test_e003_no_trust_anchors(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, TRUST_ANCHORS=[])
    assert checks.check_anchor_files(get_settings()) == [checks.E003]


def test_e004_unreadable_or_invalid_anchor_files(
    settings: Any, pki: TestPki, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    settings.HOOKSHIELD = guard_config(
        pki,
        TRUST_ANCHORS=[str(pki.ca_file), str(tmp_path / "missing.pem")],
        INTERMEDIATES=[str(garbage)],
    )
    messages = checks.check_anchor_files(get_settings())
    assert ids(messages) == ["hookshield.E004", "hookshield.E004"]
    assert "missing.pem" in messages[0].msg
    assert "garbage.pem" in messages[1].msg


def test_e005_unreadable_crl(settings: Any, pki: TestPki, tmp_path: Path) -> None:
    settings.HOOKSHIELD = guard_config(pki, CRLS=[str(pki.crl_file), str(tmp_path / "gone.crl")])
    messages = checks.check_crl_files(get_settings())
    assert ids(messages) == ["hookshield.E005"]
    assert "gone.crl" in messages[0].msg


def test_e006_empty_allowlist(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, ENDPOINTS={"payments": {"ALLOW": []}})
    messages = checks.check_empty_allowlists(get_settings())
    assert ids(messages) == ["hookshield.E006"]
    assert "'payments'" in messages[0].msg


def test_a_webhook_naming_an_unconfigured_endpoint_stops_the_urlconf_import(
    settings: Any, pki: TestPki
) -> None:
    settings.HOOKSHIELD = guard_config(pki)
    sys.modules.pop("tests.urls_misnamed", None)
    with pytest.raises(ImproperlyConfigured) as raised:
        importlib.import_module("tests.urls_misnamed")
    assert str(raised.value) == (
        "@webhook('ghost'): HOOKSHIELD['ENDPOINTS'] has no 'ghost' (configured: 'payments')"
    )


def test_e007_webhook_names_missing_from_endpoints(settings: Any, pki: TestPki) -> None:
    # Views decorated while 'payments' was configured; the settings have changed since.
    settings.HOOKSHIELD = guard_config(pki, ENDPOINTS={"orders": {"ALLOW": [ALLOWED]}})
    settings.ROOT_URLCONF = "tests.urls_drf"
    messages = checks.check_unknown_endpoints(get_settings())
    assert ids(messages) == ["hookshield.E007"]
    assert "@webhook('payments')" in messages[0].msg


def test_e012_a_drf_view_with_webhook_authentication_but_no_guard(
    settings: Any, guarded: dict[str, Any]
) -> None:
    settings.ROOT_URLCONF = "tests.urls_drf"
    messages = checks.check_unguarded_drf_views(get_settings())
    assert ids(messages) == ["hookshield.E012"]
    assert "tests.urls_drf.Unguarded" in messages[0].msg
    settings.ROOT_URLCONF = "tests.urls"
    assert checks.check_unguarded_drf_views(get_settings()) == []


def test_w001_debug_only_with_deploy(settings: Any, guarded: dict[str, Any]) -> None:
    settings.DEBUG = True
    assert checks.W001 in checks.hookshield_deploy_checks()
    settings.DEBUG = False
    assert checks.W001 not in checks.hookshield_deploy_checks()


@pytest.mark.parametrize(
    ("version", "warned"),
    [
        ((4, 2, 29), True),
        ((4, 2, 30), False),
        ((5, 1, 9), True),
        ((5, 2, 12), True),
        ((5, 2, 13), False),
        ((6, 0, 3), True),
        ((6, 0, 4), False),
        ((6, 1, 0), False),
    ],
)
def test_w002_django_releases_that_conflate_underscore_headers(
    monkeypatch: pytest.MonkeyPatch,
    guarded: dict[str, Any],
    version: tuple[int, int, int],
    warned: bool,
) -> None:
    monkeypatch.setattr(django, "VERSION", (*version, "final", 0))
    assert bool(checks.check_django_version(get_settings())) is warned


def test_manage_py_check_deploy_reports_through_django(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, TRUST_ANCHORS=[])
    with pytest.raises(SystemCheckError, match=r"hookshield\.E003"):
        call_command("check", "--deploy", "--tag", "security")


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def signed_config(pki: TestPki, **overrides: Any) -> dict[str, Any]:
    return guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "SIGNING_SECRETS": [SECRET]}}, **overrides
    )


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", ["hookshield.W004"]),
        ("django.core.cache.backends.dummy.DummyCache", ["hookshield.E010"]),
        ("django.core.cache.backends.redis.RedisCache", []),
    ],
)
def test_replay_storage_cache_backends(
    settings: Any, pki: TestPki, backend: str, expected: list[str]
) -> None:
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "redis://127.0.0.1:6379/15"}}
    settings.HOOKSHIELD = signed_config(pki, REPLAY_STORAGE="default")
    assert ids(checks.check_replay_storage(get_settings())) == expected


def test_e009_unknown_cache_alias(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = signed_config(pki, REPLAY_STORAGE="webhooks")
    assert ids(checks.check_replay_storage(get_settings())) == ["hookshield.E009"]
    settings.HOOKSHIELD = signed_config(pki, REPLAY_STORAGE="redis://127.0.0.1:6379/15")
    assert checks.check_replay_storage(get_settings()) == []
    settings.HOOKSHIELD = guard_config(pki, REPLAY_STORAGE="webhooks")  # nothing is signed
    assert checks.check_replay_storage(get_settings()) == []


def test_w009_a_per_process_replay_store_for_signed_endpoints(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = signed_config(pki, REPLAY_STORAGE="memory://")
    assert checks.W009 in checks.hookshield_deploy_checks()
    settings.HOOKSHIELD = guard_config(pki, REPLAY_STORAGE="memory://")  # nothing is signed
    assert checks.W009 not in checks.hookshield_deploy_checks()
    settings.HOOKSHIELD = signed_config(pki, REPLAY_STORAGE="redis://127.0.0.1:6379/15")
    assert checks.W009 not in checks.hookshield_deploy_checks()


def test_w003_memory_rate_limits_in_production(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "RATE": "5/second"}}
    )
    assert checks.check_rate_limit_storage(get_settings()) == [checks.W003]
    settings.HOOKSHIELD = guard_config(
        pki,
        ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "RATE": "5/second"}},
        RATE_LIMIT_STORAGE="redis://127.0.0.1:6379/15",
    )
    assert checks.check_rate_limit_storage(get_settings()) == []


def test_w005_endpoint_without_rate(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki)
    messages = checks.check_unlimited_endpoints(get_settings())
    assert ids(messages) == ["hookshield.W005"]
    settings.HOOKSHIELD = guard_config(
        pki, ENDPOINTS={"payments": {"ALLOW": [ALLOWED], "RATE": "5/second"}}
    )
    assert checks.check_unlimited_endpoints(get_settings()) == []


@pytest.mark.parametrize(
    ("backend", "errors", "deploy"),
    [
        ("django.core.cache.backends.dummy.DummyCache", [checks.E011], []),
        ("django.core.cache.backends.locmem.LocMemCache", [], [checks.W006]),
        ("django.core.cache.backends.redis.RedisCache", [], []),
    ],
)
def test_inventory_needs_a_cache_that_stores_and_is_shared(
    settings: Any, pki: TestPki, backend: str, errors: list[Any], deploy: list[Any]
) -> None:
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "redis://127.0.0.1:6379/15"}}
    settings.HOOKSHIELD = guard_config(pki, INVENTORY=True)
    assert checks.check_inventory_cache(get_settings()) == errors
    assert checks.check_inventory_cache_shared(get_settings()) == deploy
    settings.HOOKSHIELD = guard_config(pki)  # inventory off: the cache does not matter
    assert checks.check_inventory_cache(get_settings()) == []
    assert checks.check_inventory_cache_shared(get_settings()) == []
