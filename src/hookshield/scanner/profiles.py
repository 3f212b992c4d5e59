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
from collections.abc import Callable
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


_DECOY = "hookshield-lookalike"
_DECOY_DNS = "lookalike.hookshield.invalid"
# Latin letters and the Cyrillic letters drawn the same way.
_CONFUSABLE = str.maketrans("aceopxy", "\u0430\u0441\u0435\u043e\u0440\u0445\u0443")
_SAN_TYPES: dict[str, Callable[[str], x509.GeneralName]] = {
    "spiffe": x509.UniformResourceIdentifier,
    "uri": x509.UniformResourceIdentifier,
    "dns": x509.DNSName,
    "email": x509.RFC822Name,
}


def names(cert: x509.Certificate) -> list[tuple[str, str]]:
    """Every name a receiver might match on: each URI SAN ('spiffe' or 'uri'), DNS SAN, email
    SAN and CN, as (kind, value)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = x509.SubjectAlternativeName([])
    found = [
        ("spiffe" if uri.startswith("spiffe://") else "uri", uri)
        for uri in sans.get_values_for_type(x509.UniformResourceIdentifier)
    ]
    found += [("dns", value) for value in sans.get_values_for_type(x509.DNSName)]
    found += [("email", value) for value in sans.get_values_for_type(x509.RFC822Name)]
    found += [
        ("cn", str(attr.value)) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    return found


def _variants(kind: str, value: str) -> dict[str, tuple[str, str]]:
    """Names that resemble ``value`` without being it: variant -> (name, how it resembles)."""
    sep = "/" if kind in ("spiffe", "uri") else ""
    head, _, last = value.rpartition("/") if sep else ("", "", value)
    if sep:
        head += sep
    flipped = last.upper() if last.upper() != last else last.lower()
    variants = {
        "prefix": (f"{value}-hookshield", "the legitimate name is a prefix of it"),
        "suffix": (f"{head}hookshield-{last}", "the legitimate name is a suffix of it"),
        "substring": (f"{head}x{last}x", "it contains the legitimate name"),
        "case": (f"{head}{flipped}", "it differs only in case"),
        "trailing-dot": (f"{value}.", "it adds a trailing dot"),
        "nul": (f"{value}\x00.{_DECOY_DNS}", "the legitimate name, a NUL, then more"),
    }
    if kind in ("dns", "email"):
        # Host names compare without case and with or without the root's dot: those variants
        # name the same host, and a receiver that treats them alike is right.
        del variants["case"], variants["trailing-dot"]
    if kind == "cn":  # SANs are IA5 strings: only a CN can carry Unicode
        variants["confusable"] = (
            f"{head}{last.translate(_CONFUSABLE)}",
            "Cyrillic letters drawn as Latin ones",
        )
    # A name without letters has no other case (nor confusables): that "variant" is the name.
    return {variant: alike for variant, alike in variants.items() if alike[0] != value}


def _carrying(kind: str, value: str) -> tuple[x509.Name, list[x509.GeneralName]]:
    """Subject and SANs of a certificate that carries ``value`` as its only ``kind`` name."""
    if kind == "cn":
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)]), [
            x509.DNSName(_DECOY_DNS)
        ]
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _DECOY)]), [_SAN_TYPES[kind](value)]


def _attribute(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    return x509.NameAttribute(oid, value)


def dn_injections(cn: str) -> dict[str, tuple[x509.Name, str]]:
    """Subjects whose DN *string* yields ``CN=<cn>`` to glue that splits it naively, though no
    CN attribute is ``cn`` (or more than one CN is): variant -> (subject, description)."""
    cn_oid, org, unit = (
        NameOID.COMMON_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
    )

    def around(injected: str) -> x509.Name:
        # Before and after the real CN, so glue taking the first or the last CN is fooled.
        return x509.Name(
            [_attribute(org, injected), _attribute(cn_oid, _DECOY), _attribute(unit, injected)]
        )

    return {
        "escaped-comma": (around(f"x,CN={cn}"), f"'CN={cn}' after an escaped comma ('\\,')"),
        "escaped-plus": (around(f"x+CN={cn}"), f"'CN={cn}' after an escaped plus ('\\+')"),
        "escaped-equals": (around(f"x=CN={cn}"), f"'CN={cn}' after an equals sign ('\\=')"),
        "slash": (around(f"x/CN={cn}"), f"'/CN={cn}' inside a value (OpenSSL one-line DNs)"),
        "name-in-ou": (
            x509.Name([_attribute(unit, cn), _attribute(cn_oid, _DECOY)]),
            f"'{cn}' as the OU, another CN",
        ),
        "second-cn": (
            x509.Name([_attribute(cn_oid, _DECOY), _attribute(cn_oid, cn)]),
            f"two CNs, one of them '{cn}'",
        ),
        "multi-valued-rdn": (
            x509.Name(
                [
                    x509.RelativeDistinguishedName([_attribute(cn_oid, _DECOY)]),
                    x509.RelativeDistinguishedName([_attribute(unit, "x"), _attribute(cn_oid, cn)]),
                ]
            ),
            f"'CN={cn}' in a multi-valued RDN beside another CN",
        ),
    }


def look_alikes(
    legit: x509.Certificate, ca: CertificateAuthority, *, other_spiffe_id: str | None = None
) -> list[LookAlike]:
    """For every name of ``legit``: prefix, suffix, substring, case, trailing dot, NUL and
    (CNs) confusable variants; DN-string injections of its CN; the CN under another SPIFFE ID;
    and the primary name with an extra SAN or CN."""
    out: list[LookAlike] = []
    for kind, value in names(legit):
        for variant, (alike, description) in _variants(kind, value).items():
            subject, sans = _carrying(kind, alike)
            out.append(
                LookAlike(
                    f"{kind}-{variant}",
                    f"{kind} {alike!r}: {description}",
                    ca.issue(subject=subject, sans=sans),
                )
            )
    identity = ClientIdentity.from_certificate(legit)
    _, primary = _primary(legit)
    cn = identity.common_names[0] if identity.common_names else primary
    for variant, (subject, description) in dn_injections(cn).items():
        issued = ca.issue(subject=subject, sans=[x509.DNSName(_DECOY_DNS)])
        out.append(LookAlike(f"dn-{variant}", f"subject {description}", issued))
    if identity.spiffe_id and identity.common_names and other_spiffe_id:
        # Receivers that authorize on the CN of an X509-SVID: the CN is not its identity.
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        issued = ca.issue(subject=subject, sans=[x509.UniformResourceIdentifier(other_spiffe_id)])
        out.append(LookAlike("cn-other-spiffe", f"CN {cn!r} under {other_spiffe_id}", issued))
    out.extend(_extra_names(legit, ca))
    return out


def _extra_names(legit: x509.Certificate, ca: CertificateAuthority) -> list[LookAlike]:
    """The SPIFFE ID plus a second URI SAN: not an X509-SVID, whatever the first one says (a
    second CN is among the DN injections)."""
    kind, value = _primary(legit)
    if kind != "spiffe":
        return []
    two = [
        x509.UniformResourceIdentifier(value),
        x509.UniformResourceIdentifier(value.rsplit("/", 1)[0] + "/hookshield-extra"),
    ]
    return [
        LookAlike("extra-san", "the legitimate SPIFFE ID plus a second URI SAN", ca.issue(sans=two))
    ]


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
        foreign = self.foreign_spiffe_id
        issued = self.mint.issue_client(
            spiffe_id=foreign, dns_names=() if foreign else [self._foreign_dns_name()]
        )
        return self._write("foreign", issued)

    def _foreign_dns_name(self) -> str:
        """A sibling of the legitimate DNS name (same parent domain), so a receiver that allows
        a whole domain shows as accepting a foreign identity, not as confusing look-alikes."""
        assert self.legit_cert is not None
        identity = ClientIdentity.from_certificate(self.legit_cert)
        parent = identity.dns_sans[0].partition(".")[2] if identity.dns_sans else ""
        return f"hookshield-scan-foreign.{parent or 'invalid'}"

    @property
    def foreign_spiffe_id(self) -> str | None:
        """A SPIFFE ID in the legitimate one's trust domain that is not it (None without one)."""
        if self.legit_cert is None:
            return None
        kind, value = _primary(self.legit_cert)
        return (
            f"spiffe://{value.split('/')[2]}/hookshield-scan-foreign" if kind == "spiffe" else None
        )

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
            for alike in look_alikes(
                self.legit_cert, self.mint, other_spiffe_id=self.foreign_spiffe_id
            )
        ]
