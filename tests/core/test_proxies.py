from __future__ import annotations

import pytest

from hookshield.core.errors import ConfigurationError
from hookshield.core.proxies import ProxyTrust, parse_networks
from hookshield.core.sources import Inbound

SECRET = "s3cret-from-the-proxy-0123456789"
NEXT = "next-secret-during-rotation-abcdef"


def trust(
    *cidrs: str, secrets: tuple[str, ...] = (), header: str = "X-Hookshield-Proxy-Secret"
) -> ProxyTrust:
    return ProxyTrust(parse_networks(cidrs), secrets=secrets, secret_header=header)


def request(peer: str, **meta: str) -> Inbound:
    return Inbound(peer=peer, meta=meta)


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("10.0.0.5", True),
        ("10.0.0.6", False),
        ("::ffff:10.0.0.5", True),  # IPv4-mapped, as a dual-stack socket reports it
        ("fd00::1", True),
        ("fd01::1", False),
        ("", False),
        ("unix:/run/app.sock", False),
        ("10.0.0.5, 1.2.3.4", False),
    ],
)
def test_peer_must_be_in_a_trusted_network(peer: str, trusted: bool) -> None:
    verdict = trust("10.0.0.5/32", "fd00::/64").distrust(request(peer))
    assert (verdict is None) is trusted


def test_parse_networks_names_the_bad_entry() -> None:
    with pytest.raises(ConfigurationError, match=r"TRUSTED_PROXIES\[1\] = '10.0.0.1/8'"):
        parse_networks(["127.0.0.1/32", "10.0.0.1/8"])
    with pytest.raises(ConfigurationError, match="not a CIDR"):
        parse_networks(["proxy.internal"])


def test_secret_is_required_from_trusted_peers_when_configured() -> None:
    t = trust("127.0.0.1/32", secrets=(SECRET,))
    assert t.requires_secret
    assert t.distrust(request("127.0.0.1", HTTP_X_HOOKSHIELD_PROXY_SECRET=SECRET)) is None
    missing = t.distrust(request("127.0.0.1"))
    wrong = t.distrust(request("127.0.0.1", HTTP_X_HOOKSHIELD_PROXY_SECRET=SECRET[:-1]))
    assert missing is not None
    assert "sent no X-Hookshield-Proxy-Secret" in missing
    assert wrong is not None
    assert "a wrong" in wrong
    assert SECRET not in wrong
    # The right secret from an untrusted peer is not enough either.
    assert t.distrust(request("127.0.0.2", HTTP_X_HOOKSHIELD_PROXY_SECRET=SECRET)) is not None


def test_several_secrets_allow_rotation_and_a_custom_header() -> None:
    t = trust("127.0.0.1/32", secrets=(SECRET, NEXT), header="X-Edge-Token")
    assert t.secret_key == "HTTP_X_EDGE_TOKEN"
    assert t.distrust(request("127.0.0.1", HTTP_X_EDGE_TOKEN=SECRET)) is None
    assert t.distrust(request("127.0.0.1", HTTP_X_EDGE_TOKEN=NEXT)) is None
    assert t.distrust(request("127.0.0.1", HTTP_X_HOOKSHIELD_PROXY_SECRET=SECRET)) is not None
    assert t.distrust(request("127.0.0.1", HTTP_X_EDGE_TOKEN=f"{SECRET},{NEXT}")) is not None
