"""Hardened TLS terminator configurations that cannot be tricked into passing forged
certificate headers: client verification on, the certificate headers overwritten (or removed)
on every request, the proxy's secret added, underscore header names dropped, a body limit and
no version banner. One module per terminator; each renders text from ``ProxyOptions``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProxyOptions", "new_secret"]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    upstream: str  # host:port of the Django app
    client_ca: Path
    cert: Path
    key: Path
    secret: str
    listen: int = 443
    # The address to listen on ("" for every address; IPv6 in brackets, as in "[::1]").
    listen_host: str = ""
    server_name: str = "_"
    max_body: int = 262144  # bytes; the guard's MAX_BODY default
    # CA certificates between the client CA and the clients, for the guard's path building:
    # terminators verify with the chain a client sends, but most forward only the leaf.
    intermediates: tuple[Path, ...] = ()

    @property
    def listen_address(self) -> str:
        """``host:port``, or ``:port`` for every address."""
        return f"{self.listen_host}:{self.listen}"

    @property
    def max_body_kib(self) -> str:
        return f"{max(1, -(-self.max_body // 1024))}k"


def django_settings(
    source: str,
    options: ProxyOptions,
    *,
    verify_header: str | None = None,
    proxy_addresses: str = "127.0.0.1/32",
) -> str:
    """The HOOKSHIELD settings that go with a generated configuration."""
    verify = f'\n    "CERT_VERIFY_HEADER": "{verify_header}",' if verify_header else ""
    intermediates = ""
    if options.intermediates:
        files = ", ".join(f'"{path}"' for path in options.intermediates)
        intermediates = (
            f"\n    # issuers of client certificates, for path building (never anchors: the"
            f"\n    # proxy forwards only the leaf, and a root's CRL must still cover them)"
            f'\n    "INTERMEDIATES": [{files}],'
        )
    return f'''# settings.py: what this proxy configuration expects of Django
HOOKSHIELD = {{
    "CERT_SOURCE": "{source}",{verify}
    "TRUSTED_PROXIES": ["{proxy_addresses}"],  # the proxy's address as Django sees it
    "PROXY_SECRET": "{options.secret}",  # keep it out of version control (env var, vault)
    "TRUST_ANCHORS": ["{options.client_ca}"],{intermediates}
    "ENDPOINTS": {{...}},  # each endpoint's MAX_BODY at most {options.max_body} (--max-body)
}}
# Bind Django ({options.upstream}) where only the proxy can reach it (loopback, a private
# network, a unix socket): the secret protects against neighbours, not against the internet.
'''
