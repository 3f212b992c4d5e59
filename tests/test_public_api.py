"""What users may import: each public module's ``__all__``, pinned (a change is a release note)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "hookshield": ["ClientIdentity", "Code", "Rejection", "__version__"],
    "hookshield.core": [
        "CertificateParseError",
        "ClientIdentity",
        "Code",
        "Inbound",
        "PresentedChain",
        "ProxyVerifyError",
        "RedactingFilter",
        "Rejection",
        "Source",
        "SourceError",
    ],
    "hookshield.django": ["Webhook", "webhook"],
    "hookshield.django.drf": ["WebhookAuthentication", "WebhookCaller"],
    "hookshield.django.metrics": ["metrics_view"],
    "hookshield.scanner": ["Report", "ScanConfig", "Unreachable", "run_scan", "scan"],
    "hookshield.pki": [
        "CertificateAuthority",
        "IssuedCertificate",
        "name",
        "self_signed_copy",
        "subject_alt_names",
    ],
}


@pytest.mark.parametrize("module", PUBLIC)
def test_public_names_are_pinned_sorted_and_importable(module: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__all__ == PUBLIC[module]
    assert sorted(imported.__all__) == imported.__all__
    for name in imported.__all__:
        assert getattr(imported, name) is not None


def test_request_webhook_has_a_public_type() -> None:
    from hookshield.core.pipeline import Webhook as Core
    from hookshield.django import Webhook

    assert Webhook is Core
    assert Webhook.__module__ == "hookshield.core.pipeline"
    assert list(Webhook.__dataclass_fields__) == [
        "endpoint",
        "identity",
        "matched",
        "long_lived",
        "json",
        "body",
        "delivery_id",
        "claim_token",
    ]
