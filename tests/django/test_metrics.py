"""Prometheus metrics: decisions, the guard's latency and expiry gauges, bounded under attack."""

from __future__ import annotations

import secrets
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from prometheus_client import REGISTRY

from hookshield.core.errors import Code
from hookshield.django.conf import get_settings
from hookshield.django.guard import check_request
from hookshield.pki import IssuedCertificate, encodings
from tests.conftest import ALLOWED, VIA_INTERMEDIATE, TestPki, guard_config

ALLOW = [ALLOWED, VIA_INTERMEDIATE]
# Refusals of identities no endpoint allows: one series, however many identities.
STRANGERS = {
    "endpoint": "payments",
    "outcome": "refused",
    "code": Code.IDENTITY_NOT_ALLOWED,
    "identity": "other",
}


@pytest.fixture
def metered(settings: Any, pki: TestPki) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        METRICS=True,
        ENDPOINTS={"payments": {"ALLOW": ALLOW}, "orders": {"ALLOW": [ALLOWED]}},
    )


def deliver(endpoint: str, cert_header: str, *, forwarded_for: str = "10.1.1.7") -> Any:
    request = RequestFactory().post(
        f"/hooks/{endpoint}/",
        data=b'{"type": "paid"}',
        content_type="application/json",
        headers={
            "X-SSL-Client-Cert": cert_header,
            "X-SSL-Client-Verify": "SUCCESS",
            "X-Forwarded-For": forwarded_for,
        },
        REMOTE_ADDR="127.0.0.1",
    )
    return check_request(request, endpoint)


def header(cert: IssuedCertificate) -> str:
    return encodings.nginx_escaped(cert.certificate, *cert.intermediates)


def decisions(**labels: str) -> float:
    return REGISTRY.get_sample_value("hookshield_decisions_total", labels) or 0.0


def series(name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == name
    ]


@pytest.mark.usefixtures("metered")
def test_decisions_latency_and_expiry_are_counted(pki: TestPki) -> None:
    accepted = {"endpoint": "payments", "outcome": "accepted", "code": "", "identity": ALLOWED}
    before = decisions(**accepted), decisions(**STRANGERS)
    timed = REGISTRY.get_sample_value(
        "hookshield_guard_duration_seconds_count", {"endpoint": "payments"}
    )
    deliver("payments", header(pki.allowed))
    deliver("payments", header(pki.allowed))
    deliver("payments", header(pki.other))
    assert decisions(**accepted) == before[0] + 2
    assert decisions(**STRANGERS) == before[1] + 1
    assert (
        REGISTRY.get_sample_value(
            "hookshield_guard_duration_seconds_count", {"endpoint": "payments"}
        )
        == (timed or 0) + 3
    )
    assert REGISTRY.get_sample_value(
        "hookshield_certificate_not_after_seconds", {"identity": ALLOWED}
    ) == pytest.approx(pki.allowed.certificate.not_valid_after_utc.timestamp())


@pytest.mark.usefixtures("metered")
def test_a_refused_but_allowed_identity_keeps_its_label(pki: TestPki) -> None:
    # The identity is allowed on payments, not on orders: the label names it, not "other".
    labels = {
        "endpoint": "orders",
        "outcome": "refused",
        "code": Code.IDENTITY_NOT_ALLOWED,
        "identity": VIA_INTERMEDIATE,
    }
    before = decisions(**labels)
    deliver("orders", header(pki.via_intermediate))
    assert decisions(**labels) == before + 1


@pytest.mark.usefixtures("metered")
def test_hostile_traffic_creates_no_new_series(pki: TestPki) -> None:
    before = decisions(**STRANGERS)
    hostile: list[str] = []
    for _ in range(30):  # valid certificates of made-up identities
        name = f"spiffe://corp.example/{secrets.token_hex(6)}"
        hostile.append(name)
        deliver("payments", header(pki.root.issue_client(spiffe_id=name)))
    for _ in range(20):  # garbage instead of a certificate, from ever-new addresses
        junk = secrets.token_hex(12)
        hostile.append(junk)
        deliver("payments", junk, forwarded_for=f"198.51.100.{secrets.randbelow(250)}")
    for _ in range(20):  # endpoints nobody configured
        endpoint = f"hook-{secrets.token_hex(6)}"
        hostile.append(endpoint)
        deliver(endpoint, header(pki.allowed))
    assert decisions(**STRANGERS) == before + 30  # counted, in one series

    codes = {"", *(str(code) for code in Code)}
    for labels in series("hookshield_decisions_total"):
        assert labels["identity"] in {*ALLOW, "other"}
        assert labels["endpoint"] in {"payments", "orders", "unconfigured"}
        assert labels["outcome"] in {"accepted", "refused"}
        assert labels["code"] in codes
    for labels in series("hookshield_certificate_not_after_seconds"):
        assert labels["identity"] in ALLOW
    exposition = Client().get("/metrics/").content.decode()
    assert not [value for value in hostile if value in exposition]


@pytest.mark.usefixtures("metered")
def test_the_metrics_view_exposes_the_text_format(pki: TestPki) -> None:
    deliver("payments", header(pki.allowed))
    response = Client().get("/metrics/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "# TYPE hookshield_decisions_total counter" in body
    assert "# TYPE hookshield_guard_duration_seconds histogram" in body
    assert f'identity="{ALLOWED}"' in body


def test_metrics_without_prometheus_client_is_a_configuration_error(
    settings: Any, pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    settings.HOOKSHIELD = guard_config(pki, METRICS=True)
    with pytest.raises(ImproperlyConfigured, match=r"hookshield\[metrics\]"):
        get_settings()
