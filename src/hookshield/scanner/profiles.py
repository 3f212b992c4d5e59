"""The client identities the scanner speaks with, each as an ``ssl.SSLContext``.

Given, minted or forged: the legitimate certificate (``--cert``), a foreign valid one
(``--foreign-cert`` or minted from ``--mint-ca``), a rogue self-signed copy of the legitimate
subject and SANs, one from an unknown CA, an expired one and look-alike identities minted from
``--mint-ca``. Server certificates are not verified on probes (``tls.weak-server-cert`` does that
on its own), so a scan also runs against a server the scanner does not trust.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from hookshield.core.certs import load_chain
from hookshield.core.identity import ClientIdentity
from hookshield.pki import (
    CertificateAuthority,
    IssuedCertificate,
    self_signed_copy,
    subject_alt_names,
)

__all__ = ["ClientFiles", "LookAlike", "Profile", "Profiles", "look_alikes"]


class Profile(StrEnum):
    NO_CERT = "no client certificate"
    LEGIT = "legitimate certificate"
    FOREIGN = "another valid identity"
    ROGUE = "self-signed copy of the legitimate subject and SANs"
    UNKNOWN_CA = "certificate from an unknown CA"
    EXPIRED = "expired certificate from the trusted issuer"


@dataclass(frozen=True, slots=True)
class ClientFiles:
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class LookAlike:
    """A minted identity that resembles the legitimate one; ``kind`` says how."""

    kind: str
    description: str
    issued: IssuedCertificate


def _primary(cert: x509.Certificate) -> tuple[str, str]:
    """The identity a receiver most likely matches on: ('spiffe'|'dns'|'cn', value)."""
    identity = ClientIdentity.from_certificate(cert)
    if identity.spiffe_id:
        return "spiffe", identity.spiffe_id
    if identity.dns_sans:
        return "dns", identity.dns_sans[0]
    if identity.common_names:
        return "cn", identity.common_names[0]
    raise ValueError("the legitimate certificate names no SPIFFE ID, DNS SAN or CN to imitate")


def _sans(kind: str, values: list[str]) -> list[x509.GeneralName]:
    if kind == "spiffe":
        return [x509.UniformResourceIdentifier(v) for v in values]
    if kind == "dns":
        return [x509.DNSName(v) for v in values]
    return []


def look_alikes(legit: x509.Certificate, ca: CertificateAuthority) -> list[LookAlike]:
    """Prefix, suffix, substring, case, trailing dot, extra RDN and extra SAN variants."""
    kind, value = _primary(legit)
    head, sep, last = value.rpartition("/") if kind == "spiffe" else ("", "", value)
    variants = {
        "prefix": (f"{value}-hookshield", "the legitimate name is a prefix of it"),
        "suffix": (f"{head}{sep}hookshield-{last}", "the legitimate name is a suffix of it"),
        "substring": (f"{head}{sep}x{last}x", "it contains the legitimate name"),
        "case": (
            f"{head}{sep}{last.upper()}" if last.upper() != last else f"{head}{sep}{last.lower()}",
            "it differs only in case",
        ),
        "trailing-dot": (f"{value}.", "it adds a trailing dot"),
    }
    out = []
    for name, (variant, description) in variants.items():
        if kind == "cn":
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, variant)])
            sans: list[x509.GeneralName] = [x509.DNSName("lookalike.hookshield.invalid")]
        else:
            subject, sans = x509.Name([]), _sans(kind, [variant])
        out.append(
            LookAlike(
                name, f"{kind} {variant!r}: {description}", ca.issue(subject=subject, sans=sans)
            )
        )
    # The legitimate name inside another RDN of the subject, the real identity elsewhere.
    extra_rdn = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"CN={value}"),
            x509.NameAttribute(NameOID.COMMON_NAME, "hookshield-lookalike"),
        ]
    )
    out.append(
        LookAlike(
            "extra-rdn",
            f"the legitimate name inside an extra RDN ('OU=CN={value}')",
            ca.issue(subject=extra_rdn, sans=[x509.DNSName("lookalike.hookshield.invalid")]),
        )
    )
    if kind == "spiffe":
        # Two URI SANs: not an X509-SVID, whatever the first one says.
        two = _sans(kind, [value, value.rsplit("/", 1)[0] + "/hookshield-extra"])
        out.append(
            LookAlike(
                "extra-san", "the legitimate SPIFFE ID plus a second URI SAN", ca.issue(sans=two)
            )
        )
    elif kind == "cn":
        two_cns = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, value),
                x509.NameAttribute(NameOID.COMMON_NAME, "hookshield-extra"),
            ]
        )
        out.append(
            LookAlike(
                "extra-san",
                "the legitimate CN plus a second CN",
                ca.issue(subject=two_cns, sans=[x509.DNSName("x.hookshield.invalid")]),
            )
        )
    return out


class Profiles:
    """Materialises each profile's certificate files and TLS context (in a temporary directory)."""

    def __init__(
        self,
        *,
        legit: ClientFiles | None,
        foreign: ClientFiles | None,
        mint_ca: ClientFiles | None,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="hookshield-scan-")
        self.directory = Path(self._dir.name)
        self.legit = legit
        self.legit_cert = load_chain(legit.cert.read_bytes())[0] if legit else None
        self.mint = CertificateAuthority.load(mint_ca.cert, mint_ca.key) if mint_ca else None
        self.foreign = foreign
        self._files: dict[str, ClientFiles] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}

    def close(self) -> None:
        self._dir.cleanup()

    def _write(self, name: str, issued: IssuedCertificate) -> ClientFiles:
        cert, key = issued.write(self.directory, name.replace(" ", "-"))
        return ClientFiles(cert, key)

    def files(self, profile: Profile) -> ClientFiles | None:
        """The certificate files for ``profile``; None for NO_CERT or when it cannot be made."""
        if profile in self._files:
            return self._files[profile]
        made = self._make(profile)
        if made is not None:
            self._files[profile] = made
        return made

    def _make(self, profile: Profile) -> ClientFiles | None:
        if profile is Profile.NO_CERT:
            return None
        if profile is Profile.LEGIT:
            return self.legit
        if profile is Profile.FOREIGN:
            return self._foreign()
        if profile is Profile.UNKNOWN_CA:
            stranger = CertificateAuthority.create("hookshield scan unknown CA")
            issued = stranger.issue_client(dns_names=["unknown.hookshield.invalid"])
            return self._write("unknown-ca", issued)
        # The rest imitate the legitimate certificate.
        if self.legit_cert is None:
            return None
        if profile is Profile.ROGUE:
            return self._write("rogue", self_signed_copy(self.legit_cert))
        if profile is Profile.EXPIRED:
            return self._expired(self.legit_cert)
        raise AssertionError(profile)

    def _foreign(self) -> ClientFiles | None:
        """--foreign-cert if given, else an identity minted from --mint-ca beside the legit one."""
        if self.foreign is not None:
            return self.foreign
        if self.mint is None or self.legit_cert is None:
            return None
        kind, value = _primary(self.legit_cert)
        foreign = (
            "spiffe://" + value.split("/")[2] + "/hookshield-scan-foreign"
            if kind == "spiffe"
            else None
        )
        issued = self.mint.issue_client(
            spiffe_id=foreign, dns_names=() if foreign else ["hookshield-scan-foreign.invalid"]
        )
        return self._write("foreign", issued)

    def _expired(self, legit_cert: x509.Certificate) -> ClientFiles | None:
        if self.mint is None:
            return None
        now = dt.datetime.now(dt.UTC)
        expired = self.mint.issue(
            subject=legit_cert.subject,
            sans=subject_alt_names(legit_cert),
            not_before=now - dt.timedelta(days=30),
            lifetime=dt.timedelta(days=1),
        )
        return self._write("expired", expired)

    def context(self, profile: Profile | ClientFiles) -> ssl.SSLContext:
        files = profile if isinstance(profile, ClientFiles) else self.files(profile)
        key = str(files.cert) if files else "none"
        if key not in self._contexts:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            if files is not None:
                context.load_cert_chain(files.cert, files.key)
            self._contexts[key] = context
        return self._contexts[key]

    def look_alikes(self) -> list[tuple[LookAlike, ClientFiles]]:
        if self.mint is None or self.legit_cert is None:
            return []
        return [
            (alike, self._write(f"lookalike-{alike.kind}", alike.issued))
            for alike in look_alikes(self.legit_cert, self.mint)
        ]
