from __future__ import annotations

import logging
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from hookshield.core.errors import ConfigurationError
from hookshield.django.conf import get_settings, load
from tests.conftest import ALLOWED, TestPki, guard_config


def test_a_full_configuration_loads(pki: TestPki) -> None:
    conf = load(
        guard_config(
            pki,
            PROXY_SECRET="x" * 32,
            CRLS=[str(pki.crl_file)],
            LONG_LIVED="reject",
            MAX_CERT_LIFETIME_DAYS=30,
        )
    )
    assert conf.cert_source == "nginx"
    assert conf.cert_source_set
    assert conf.proxy_secrets == ("x" * 32,)
    assert conf.endpoints["payments"].allow.spiffe_ids >= {ALLOWED}
    assert conf.max_cert_lifetime_days == 30


def test_defaults_fail_closed() -> None:
    conf = load({})
    assert conf.cert_source == "asgi-tls"  # unforgeable; nothing is believed from headers
    assert conf.trusted_proxies == ()
    assert conf.trust_anchors == ()
    assert conf.max_cert_lifetime_days == 90
    assert conf.long_lived.value == "warn"
    assert conf.accepted_log_level == logging.INFO  # every accepted delivery logged, as before


def test_accepted_decisions_can_be_logged_at_debug() -> None:
    assert load({"ACCEPTED_LOG_LEVEL": "DEBUG"}).accepted_log_level == logging.DEBUG


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ([], "HOOKSHIELD must be a dict"),
        ({"CERT_SOURCE": "lighttpd"}, "HOOKSHIELD['CERT_SOURCE']"),
        ({"TRUSTED_PROXIES": "127.0.0.1/32"}, "HOOKSHIELD['TRUSTED_PROXIES'] must be a list"),
        ({"TRUSTED_PROXIES": ["127.0.0.1/33"]}, "HOOKSHIELD['TRUSTED_PROXIES'][0]"),
        ({"TRUST_ANCHORS": [""]}, "HOOKSHIELD['TRUST_ANCHORS'][0]"),
        ({"LONG_LIVED": "ignore"}, "HOOKSHIELD['LONG_LIVED'] must be one of 'warn', 'reject'"),
        ({"MAX_CERT_LIFETIME_DAYS": 0}, "HOOKSHIELD['MAX_CERT_LIFETIME_DAYS']"),
        ({"MAX_CERT_LIFETIME_DAYS": True}, "HOOKSHIELD['MAX_CERT_LIFETIME_DAYS']"),
        ({"CERT_HEADER": "X SSL"}, "HOOKSHIELD['CERT_HEADER']"),
        ({"CERT_SOURCE": "asgi-tls", "CERT_HEADER": "X-Cert"}, "no meaning for CERT_SOURCE"),
        (
            {"PROXY_SECRET": "short"},
            "HOOKSHIELD['PROXY_SECRET'] must be a printable string of at least 16",
        ),
        ({"PROXY_SECRET": ["x" * 20, 5]}, "HOOKSHIELD['PROXY_SECRET'][1]"),
        ({"PROXY_SECRET": []}, "HOOKSHIELD['PROXY_SECRET']"),
        ({"TRUST_ANCHOR": []}, "HOOKSHIELD['TRUST_ANCHOR'] is not a hookshield setting"),
        ({"INVENTORY": "yes"}, "HOOKSHIELD['INVENTORY'] must be True or False"),
        (
            {"ACCEPTED_LOG_LEVEL": "WARNING"},
            "HOOKSHIELD['ACCEPTED_LOG_LEVEL'] must be one of 'INFO', 'DEBUG'",
        ),
        ({"RATE_LIMIT_STORAGE": "memcached://x"}, "HOOKSHIELD['RATE_LIMIT_STORAGE']"),
        ({"RATE_LIMIT_FAILURE": "ignore"}, "HOOKSHIELD['RATE_LIMIT_FAILURE'] must be one of"),
        ({"REPLAY_STORAGE": ""}, "HOOKSHIELD['REPLAY_STORAGE']"),
        ({"REPLAY_STORAGE": "memcached://s:11211"}, "HOOKSHIELD['REPLAY_STORAGE']"),
        ({"REDACT": "card_number"}, "HOOKSHIELD['REDACT'] must be a list"),
        ({"ENDPOINTS": []}, "HOOKSHIELD['ENDPOINTS'] must be a dict"),
        ({"ENDPOINTS": {"pay ments": {}}}, "key 'pay ments'"),
        (
            {"ENDPOINTS": {"p": {"ALLOW": ALLOWED}}},
            "HOOKSHIELD['ENDPOINTS']['p']['ALLOW'] must be a list",
        ),
        ({"ENDPOINTS": {"p": {"ALLOW": ["payments"]}}}, "HOOKSHIELD['ENDPOINTS']['p']['ALLOW'][0]"),
        ({"ENDPOINTS": {"p": {"RATE": "lots"}}}, "['p']['RATE'] = 'lots' is not a rate"),
        ({"ENDPOINTS": {"p": {"RATE": [5]}}}, "['p']['RATE'] must be a rate"),
        ({"ENDPOINTS": {"p": {"METHODS": ["post"]}}}, "['p']['METHODS'][0]"),
        ({"ENDPOINTS": {"p": {"CONTENT_TYPES": ["json"]}}}, "['p']['CONTENT_TYPES'][0]"),
        ({"ENDPOINTS": {"p": {"MAX_BODY": -1}}}, "['p']['MAX_BODY'] must be a positive integer"),
        ({"ENDPOINTS": {"p": {"MAX_JSON_DEPTH": 0}}}, "['p']['MAX_JSON_DEPTH']"),
        (
            {"ENDPOINTS": {"p": {"SCHEMA": "/nonexistent.json"}}},
            "['p']['SCHEMA'] = '/nonexistent.json'",
        ),
        (
            {"ENDPOINTS": {"p": {"SCHEMA": {"type": 5}}}},
            "['p']['SCHEMA'] is not a valid JSON Schema",
        ),
        (
            {"ENDPOINTS": {"p": {"SIGNING_SECRETS": "whsec_x"}}},
            "['p']['SIGNING_SECRETS'] must be a list",
        ),
        (
            {"ENDPOINTS": {"p": {"SIGNING_SECRETS": ["secret"]}}},
            "['p']['SIGNING_SECRETS'][0] must start",
        ),
        ({"ENDPOINTS": {"p": {"SIGNING_SECRETS": ["whsec_c2hvcnQ="]}}}, "decodes to 5 bytes"),
        ({"ENDPOINTS": {"p": {"SIGNING_SECRETS": ["whpk_!!"]}}}, "not valid base64"),
        ({"ENDPOINTS": {"p": {"TIMESTAMP_TOLERANCE": 60}}}, "needs SIGNING_SECRETS"),
        ({"ENDPOINTS": {"p": {"ALOW": []}}}, "['p']['ALOW'] is not a hookshield setting here"),
        ({"ENDPOINTS": {"p": {"ALLOW_CN": "yes"}}}, "['p']['ALLOW_CN'] must be True or False"),
    ],
)
def test_invalid_settings_name_the_key(raw: Any, names: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load(raw)
    assert names in str(info.value)


def test_the_proxy_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as info:
        load({"PROXY_SECRET": "tooshort-secret"})
    assert "tooshort-secret" not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        load({"PROXY_SECRET": {"leaky": "value"}})
    assert "leaky" not in str(info.value)


@pytest.mark.parametrize(
    "uri",
    [
        "redis://r:6379/0",
        "rediss://r:6380/0",
        "unix:///run/redis.sock",
        "redis+unix:///run/redis.sock",
        "redis+cluster://a:7000,b:7001",
        "redis+sentinel://s1:26379,s2:26379/mymaster",
        "valkey://v:6379",
        "valkey+cluster://a:7000",
        "valkey+sentinel://s:26379/mymaster",
    ],
)
def test_the_replay_store_takes_every_uri_the_rate_limiter_takes(uri: str) -> None:
    assert load({"REPLAY_STORAGE": uri}).replay_storage == uri
    if not uri.startswith("unix:"):  # redis-py's spelling, not a limits scheme
        assert load({"RATE_LIMIT_STORAGE": uri}).rate_limit_storage == uri


@pytest.mark.parametrize("key", ["RATE_LIMIT_STORAGE", "REPLAY_STORAGE"])
def test_storage_passwords_are_never_echoed(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load({key: "memcached://:pw-in-url@cache:11211"})
    assert "pw-in-url" not in str(info.value)
    assert "memcached://[REDACTED]@cache:11211" in str(info.value)


def test_cn_entries_need_allow_cn() -> None:
    conf = load({"ENDPOINTS": {"p": {"ALLOW": ["cn:legacy"], "ALLOW_CN": True}}})
    assert conf.allow_cn
    with pytest.raises(ConfigurationError, match="ALLOW_CN"):
        load({"ENDPOINTS": {"p": {"ALLOW": ["cn:legacy"]}}})


def test_invalid_settings_stop_the_app_at_startup(settings: Any) -> None:
    settings.HOOKSHIELD = {"CERT_SOURCE": "nginx", "TRUSTED_PROXIES": ["not-a-network"]}
    with pytest.raises(ImproperlyConfigured, match=r"HOOKSHIELD\['TRUSTED_PROXIES'\]\[0\]"):
        apps.get_app_config("hookshield").ready()


def test_settings_follow_override_settings(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(pki, LONG_LIVED="reject")
    assert get_settings().long_lived.value == "reject"
    settings.HOOKSHIELD = guard_config(pki)
    assert get_settings().long_lived.value == "warn"
