"""Whether a request comes from a proxy whose certificate headers may be believed.

A peer address in ``TRUSTED_PROXIES`` is necessary; where the app's port is reachable from the
proxy's own host or network (containers, pods, sidecars) that is weak, so a ``PROXY_SECRET`` the
proxy adds to every request can be required as well. Secrets are compared in constant time and
never logged.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from hookshield.core.errors import ConfigurationError
from hookshield.core.sources.base import Inbound, meta_key

__all__ = ["DEFAULT_SECRET_HEADER", "ProxyTrust", "parse_networks"]

DEFAULT_SECRET_HEADER = "X-Hookshield-Proxy-Secret"  # noqa: S105  (a header name)


def parse_networks(
    entries: Sequence[str], where: str = "TRUSTED_PROXIES"
) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for index, entry in enumerate(entries):
        try:
            networks.append(ip_network(entry, strict=True))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"{where}[{index}] = {entry!r} is not a CIDR network: {exc}"
            ) from exc
    return tuple(networks)


class ProxyTrust:
    """Decides, per request, whether forwarded certificate headers are believed."""

    def __init__(
        self,
        networks: Sequence[IPv4Network | IPv6Network],
        *,
        secrets: Sequence[str] = (),
        secret_header: str = DEFAULT_SECRET_HEADER,
    ) -> None:
        self.networks = tuple(networks)
        self._secrets = tuple(s.encode() for s in secrets)
        self.secret_header = secret_header
        self.secret_key = meta_key(secret_header)
        # Peers are few (the proxies); the bounded cache keeps the address parse off the hot path.
        self._peer_trusted = functools.lru_cache(maxsize=256)(self._in_networks)

    @property
    def requires_secret(self) -> bool:
        return bool(self._secrets)

    def _in_networks(self, peer: str) -> bool:
        try:
            address = ip_address(peer)
        except ValueError:
            return False  # a unix socket path or garbage is no trusted peer
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def distrust(self, inbound: Inbound) -> str | None:
        """None when the request comes from a trusted proxy; otherwise why not (for the log)."""
        if not self._peer_trusted(inbound.peer):
            return f"peer {inbound.peer[:64]!r} is not in TRUSTED_PROXIES"
        if self._secrets:
            presented = inbound.meta.get(self.secret_key)
            if not isinstance(presented, str) or not self._secret_matches(
                presented.encode("utf-8", "replace")
            ):
                what = "no" if presented is None else "a wrong"
                return f"peer {inbound.peer!r} sent {what} {self.secret_header}"
        return None

    def _secret_matches(self, presented: bytes) -> bool:
        # Compare with every configured secret, without stopping early, so the time taken says
        # nothing about which secret (or how much of one) matched.
        matched = False
        for secret in self._secrets:
            matched |= hmac.compare_digest(presented, secret)
        return matched
