"""A small certificate authority for development, tests and the scanner's minted probes.

Everything it issues carries proper RFC 5280 extensions (basic constraints, key usage, subject and
authority key identifiers, SAN critical only when the subject is empty), so strict verifiers such
as cryptography's ``x509.verification`` accept it. Keys are ECDSA P-256: fast to make, small on
the wire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateAuthority",
    "IssuedCertificate",
    "name",
    "self_signed_copy",
    "subject_alt_names",
]

# Keys hookshield makes are P-256; a CA loaded from files (the scanner's --mint-ca) may be RSA.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_DAY = dt.timedelta(days=1)
# Backdate a little so a certificate issued "now" is valid on a peer whose clock is a bit behind.
_BACKDATE = dt.timedelta(minutes=5)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str | None = None, **attributes: str) -> x509.Name:
    """Build a subject: ``name("svc", O="Acme")``; keyword keys are NameOID attribute names."""
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "L": NameOID.LOCALITY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "DC": NameOID.DOMAIN_COMPONENT,
    }
    rdns = [x509.NameAttribute(oids[key], value) for key, value in attributes.items()]
    if common_name is not None:
        rdns.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(rdns)


def subject_alt_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    """The certificate's SAN entries, none when it has no SAN extension."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate, its private key, and the intermediates between it and the root."""

    certificate: x509.Certificate
    key: PrivateKey
    intermediates: tuple[x509.Certificate, ...] = ()

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.certificate)

    @property
    def chain_pem(self) -> bytes:
        """The leaf followed by its intermediates, as a TLS client sends it."""
        return self.cert_pem + b"".join(_pem(c) for c in self.intermediates)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``stem.pem`` (leaf + intermediates) and ``stem.key``; return both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(self.chain_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


def _key_ids(
    builder: x509.CertificateBuilder,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    issuer: x509.Certificate | None,
) -> x509.CertificateBuilder:
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = builder.add_extension(ski, critical=False)
    if issuer is None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
    return builder.add_extension(aki, critical=False)


@dataclass(frozen=True)
class CertificateAuthority:
    """A root or intermediate CA that issues leaf certificates and CRLs."""

    certificate: x509.Certificate
    key: PrivateKey
    parents: tuple[x509.Certificate, ...] = field(default=())  # intermediates above us, not root

    @classmethod
    def create(
        cls,
        common_name: str = "hookshield development CA",
        *,
        lifetime: dt.timedelta = 3650 * _DAY,
        path_length: int | None = 1,
        not_before: dt.datetime | None = None,
    ) -> CertificateAuthority:
        """A self-signed root, valid from `not_before` (a few minutes ago) for `lifetime`."""
        key = _new_key()
        subject = name(common_name, O="hookshield")
        start = not_before if not_before is not None else _now() - _BACKDATE
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
        )
        builder = _key_ids(builder, key.public_key(), None)
        return cls(builder.sign(key, hashes.SHA256()), key)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"{key_path}: only EC and RSA private keys are supported")
        return cls(certs[0], key, tuple(certs[1:]))

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.certificate)

    def intermediate(
        self, common_name: str, *, lifetime: dt.timedelta = 1825 * _DAY, path_length: int = 0
    ) -> CertificateAuthority:
        key = _new_key()
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name, O="hookshield"))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(min(now + lifetime, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
        )
        builder = _key_ids(builder, key.public_key(), self.certificate)
        cert = builder.sign(self.key, hashes.SHA256())
        return CertificateAuthority(cert, key, self._own_chain())

    def issue(
        self,
        *,
        subject: x509.Name | None = None,
        sans: Sequence[x509.GeneralName] = (),
        usages: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
        lifetime: dt.timedelta = 30 * _DAY,
        not_before: dt.datetime | None = None,
        san_critical: bool | None = None,
        key: PrivateKey | None = None,
    ) -> IssuedCertificate:
        """Issue an end-entity certificate.

        ``san_critical`` defaults to what RFC 5280 asks (critical only with an empty subject);
        setting it lets tests mint the non-conforming certificates strict verifiers refuse.
        """
        key = key or _new_key()
        subject = subject if subject is not None else x509.Name([])
        start = not_before if not_before is not None else _now() - _BACKDATE
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        if sans:
            critical = len(subject) == 0 if san_critical is None else san_critical
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical)
        builder = _key_ids(builder, key.public_key(), self.certificate)
        cert = builder.sign(self.key, hashes.SHA256())
        return IssuedCertificate(cert, key, self._own_chain())

    def _own_chain(self) -> tuple[x509.Certificate, ...]:
        # What a leaf of ours sends after itself: us (unless we are the root) and our parents.
        if self.certificate.subject == self.certificate.issuer:
            return ()
        return (self.certificate, *self.parents)

    def issue_client(
        self,
        *,
        spiffe_id: str | None = None,
        dns_names: Iterable[str] = (),
        uris: Iterable[str] = (),
        common_name: str | None = None,
        lifetime: dt.timedelta = 30 * _DAY,
        not_before: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """A client certificate (EKU clientAuth) naming a service by SPIFFE ID and/or DNS SANs."""
        sans: list[x509.GeneralName] = []
        if spiffe_id is not None:
            sans.append(x509.UniformResourceIdentifier(spiffe_id))
        sans.extend(x509.UniformResourceIdentifier(u) for u in uris)
        sans.extend(x509.DNSName(d) for d in dns_names)
        subject = name(common_name) if common_name is not None else x509.Name([])
        return self.issue(subject=subject, sans=sans, lifetime=lifetime, not_before=not_before)

    def issue_server(
        self, hosts: Iterable[str], *, lifetime: dt.timedelta = 90 * _DAY
    ) -> IssuedCertificate:
        """A server certificate (EKU serverAuth) for host names and IP addresses."""
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        return self.issue(sans=sans, usages=(ExtendedKeyUsageOID.SERVER_AUTH,), lifetime=lifetime)

    def crl(
        self,
        revoked: Iterable[x509.Certificate | int] = (),
        *,
        next_update: dt.timedelta = 7 * _DAY,
        this_update: dt.datetime | None = None,
    ) -> x509.CertificateRevocationList:
        """A CRL signed by this CA listing ``revoked`` (its certificates, or their serials)."""
        start = this_update if this_update is not None else _now() - _BACKDATE
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(start)
            .next_update(start + next_update)
        )
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert if isinstance(cert, int) else cert.serial_number)
                .revocation_date(start)
                .build()
            )
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        ).add_extension(x509.CRLNumber(x509.random_serial_number() >> 100), critical=False)
        return builder.sign(self.key, hashes.SHA256())


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def self_signed_copy(original: x509.Certificate) -> IssuedCertificate:
    """A rogue certificate: same subject, serial-free copy of every extension, own key, self-signed.

    It is what an attacker makes to pass a check that compares names instead of verifying the
    signature chain.
    """
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(original.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(original.not_valid_before_utc)
        .not_valid_after(original.not_valid_after_utc)
    )
    for ext in original.extensions:
        if isinstance(ext.value, x509.SubjectKeyIdentifier | x509.AuthorityKeyIdentifier):
            continue
        builder = builder.add_extension(ext.value, ext.critical)
    builder = _key_ids(builder, key.public_key(), None)
    return IssuedCertificate(builder.sign(key, hashes.SHA256()), key)
