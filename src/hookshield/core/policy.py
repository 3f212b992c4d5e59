"""Which identities may call an endpoint: exact matching on compiled sets, nothing else.

An allowlist entry says what it names by its form::

    spiffe://corp.example/payments-gateway   a SPIFFE ID (the certificate's single URI SAN)
    dns:payments.corp.example                a DNS SAN
    uri:https://corp.example/ids/payments    a URI SAN
    sha256:<64 hex digits, colons allowed>   a pin on the certificate's SHA-256 fingerprint
    cn:payments-gateway                      the subject CN; only with ALLOW_CN, and only for
                                             certificates with exactly one CN

No substring, prefix, case-folding or regular expression is ever applied: a DN is never
compared as text, and a name matches only when it is the same string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hookshield.core.errors import ConfigurationError
from hookshield.core.identity import ClientIdentity, is_spiffe_id

__all__ = ["Allowlist"]

_HEX_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Allowlist:
    spiffe_ids: frozenset[str] = frozenset()
    dns_names: frozenset[str] = frozenset()
    uris: frozenset[str] = frozenset()
    fingerprints: frozenset[str] = frozenset()
    common_names: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return any(
            (self.spiffe_ids, self.dns_names, self.uris, self.fingerprints, self.common_names)
        )

    @classmethod
    def parse(
        cls, entries: Sequence[str], *, allow_cn: bool = False, where: str = "ALLOW"
    ) -> Allowlist:
        """Compile entries once; an entry of no known form raises ``ConfigurationError``."""
        sets: dict[str, set[str]] = {
            "spiffe": set(),
            "dns": set(),
            "uri": set(),
            "sha256": set(),
            "cn": set(),
        }
        for index, entry in enumerate(entries):
            kind, value = _entry(f"{where}[{index}]", entry, allow_cn)
            sets[kind].add(value)
        return cls(
            spiffe_ids=frozenset(sets["spiffe"]),
            dns_names=frozenset(sets["dns"]),
            uris=frozenset(sets["uri"]),
            fingerprints=frozenset(sets["sha256"]),
            common_names=frozenset(sets["cn"]),
        )

    def match(self, identity: ClientIdentity) -> str | None:
        """The entry that admits ``identity`` (for the log line), or None."""
        if identity.spiffe_id is not None and identity.spiffe_id in self.spiffe_ids:
            return identity.spiffe_id
        if identity.fingerprint in self.fingerprints:
            return f"sha256:{identity.fingerprint}"
        for name in identity.dns_sans:
            if name in self.dns_names:
                return f"dns:{name}"
        for uri in identity.uri_sans:
            if uri in self.uris:
                return f"uri:{uri}"
        if len(identity.common_names) == 1 and identity.common_names[0] in self.common_names:
            return f"cn:{identity.common_names[0]}"
        return None


_KINDS = ("dns", "uri", "sha256", "cn")


def _entry(at: str, entry: object, allow_cn: bool) -> tuple[str, str]:
    """One ALLOW entry as (kind, normalised value); ``ConfigurationError`` names it if bad."""
    if not isinstance(entry, str) or not entry:
        raise ConfigurationError(f"{at} must be a non-empty string, not {entry!r}")
    if entry.startswith("spiffe://"):
        if not is_spiffe_id(entry):
            raise ConfigurationError(
                f"{at} = {entry!r} is not a valid SPIFFE ID with a workload path "
                "(lowercase trust domain, segments of [A-Za-z0-9._-], no trailing '/')"
            )
        return "spiffe", entry
    kind, sep, value = entry.partition(":")
    if not sep or kind not in _KINDS or not value:
        raise ConfigurationError(
            f"{at} = {entry!r} has no known form; use spiffe://..., dns:NAME, uri:URI, "
            "sha256:FINGERPRINT or cn:NAME"
        )
    if kind == "sha256":
        value = value.replace(":", "").lower()
        if not _HEX_FINGERPRINT.fullmatch(value):
            raise ConfigurationError(f"{at} = {entry!r}: a SHA-256 pin is 64 hex digits")
    if kind == "cn" and not allow_cn:
        raise ConfigurationError(
            f"{at} = {entry!r} matches on a subject CN; set ALLOW_CN to True on the "
            "endpoint to opt in (SPIFFE IDs or SANs are preferred)"
        )
    return kind, value
