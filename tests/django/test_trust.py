"""TRUST_ANCHORS and INTERMEDIATES from one chain file: only its root is trusted, so the root's
CRL still covers the intermediate (trusting the intermediate itself would skip it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from hookshield.pki import encodings
from tests.conftest import TestPki, guard_config


@pytest.fixture
def chain_file(pki: TestPki, tmp_path: Path) -> Path:
    """What a CA hands out as "the client CA": the intermediate, then its root."""
    path = tmp_path / "clients-ca-chain.pem"
    path.write_bytes(pki.intermediate.cert_pem + pki.root.cert_pem)
    return path


def crls(pki: TestPki, tmp_path: Path, *, intermediate_revoked: bool) -> list[str]:
    revoked = [pki.intermediate.certificate] if intermediate_revoked else []
    root_crl = tmp_path / "root.crl"
    root_crl.write_bytes(pki.root.crl(revoked).public_bytes(Encoding.PEM))
    return [str(root_crl), str(pki.intermediate_crl_file)]


def deliver(pki: TestPki) -> tuple[int, str]:
    """The leaf only, as nginx forwards it."""
    response = Client(REMOTE_ADDR="127.0.0.1").post(
        "/hooks/payments/",
        data=b"{}",
        content_type="application/json",
        headers={
            "X-SSL-Client-Cert": encodings.nginx_escaped(pki.via_intermediate.certificate),
            "X-SSL-Client-Verify": "SUCCESS",
        },
    )
    body = json.loads(response.content)
    return response.status_code, body.get("error", {}).get("code", "")


@pytest.mark.parametrize(
    ("also_intermediates", "intermediate_revoked", "expected"),
    [
        (True, False, (200, "")),
        (True, True, (401, "client_cert_revoked")),
        # The chain file as TRUST_ANCHORS alone anchors the intermediate: its revocation by the
        # root goes unseen. This is why proxy-config prints the file under INTERMEDIATES too.
        (False, True, (200, "")),
    ],
)
def test_a_chain_file_named_in_both_trusts_only_its_root(
    settings: Any,
    pki: TestPki,
    tmp_path: Path,
    chain_file: Path,
    also_intermediates: bool,
    intermediate_revoked: bool,
    expected: tuple[int, str],
) -> None:
    settings.HOOKSHIELD = guard_config(
        pki,
        TRUST_ANCHORS=[str(chain_file)],
        INTERMEDIATES=[str(chain_file)] if also_intermediates else [],
        CRLS=crls(pki, tmp_path, intermediate_revoked=intermediate_revoked),
    )
    assert deliver(pki) == expected


def test_anchors_that_are_all_intermediates_stop_the_start(
    settings: Any, pki: TestPki, tmp_path: Path
) -> None:
    only = tmp_path / "intermediate.pem"
    only.write_bytes(pki.intermediate.cert_pem)
    settings.HOOKSHIELD = guard_config(pki, TRUST_ANCHORS=[str(only)], INTERMEDIATES=[str(only)])
    with pytest.raises(ImproperlyConfigured, match="no anchor is left to trust"):
        apps.get_app_config("hookshield").ready()
