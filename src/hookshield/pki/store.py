"""A CA kept in a directory, for ``hookshield pki`` (and the demo).

    DIR/ca.pem, ca.key                    the root
    DIR/intermediate.pem, intermediate.key  optional, made by ``init --intermediate``
    DIR/issued.json                       every certificate issued: serial, names, revoked or not
    DIR/<name>.pem, <name>.key            issued certificates (leaf first, then intermediates)
    DIR/crl.pem, intermediate-crl.pem     CRLs, rewritten by ``revoke`` and ``crl``

Private keys are written with mode 0600. For development and tests, not for production PKI.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from hookshield.pki import CertificateAuthority, IssuedCertificate, subject_alt_names

__all__ = ["CaDirectory", "PkiError"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED = ("ca", "intermediate", "crl", "intermediate-crl")


class PkiError(Exception):
    """A usage problem (existing CA, unknown certificate name...); the message says which."""


@dataclass(frozen=True)
class CaDirectory:
    path: Path

    @property
    def root_files(self) -> tuple[Path, Path]:
        return self.path / "ca.pem", self.path / "ca.key"

    @property
    def intermediate_files(self) -> tuple[Path, Path]:
        return self.path / "intermediate.pem", self.path / "intermediate.key"

    @property
    def index(self) -> Path:
        return self.path / "issued.json"

    def init(
        self, name: str, *, days: int = 3650, intermediate: bool = False, force: bool = False
    ) -> CertificateAuthority:
        if self.root_files[0].exists() and not force:
            raise PkiError(f"{self.path} already holds a CA (ca.pem); use --force to replace it")
        self.path.mkdir(parents=True, exist_ok=True)
        root = CertificateAuthority.create(name, lifetime=dt.timedelta(days=days))
        IssuedCertificate(root.certificate, root.key).write(self.path, "ca")
        if intermediate:
            sub = root.intermediate(f"{name} intermediate", lifetime=dt.timedelta(days=days))
            IssuedCertificate(sub.certificate, sub.key).write(self.path, "intermediate")
        elif self.intermediate_files[0].exists():
            for stale in self.intermediate_files:
                stale.unlink()
        self.index.write_text("[]\n")
        self.write_crls()
        return root

    def root(self) -> CertificateAuthority:
        cert, key = self.root_files
        if not cert.exists():
            raise PkiError(f"{self.path} holds no CA: run 'hookshield pki init {self.path}' first")
        return CertificateAuthority.load(cert, key)

    def intermediate(self) -> CertificateAuthority:
        cert, key = self.intermediate_files
        if not cert.exists():
            raise PkiError(f"{self.path} has no intermediate CA: run 'init --intermediate'")
        return CertificateAuthority.load(cert, key)

    def _entries(self) -> list[dict[str, Any]]:
        return list(json.loads(self.index.read_text())) if self.index.exists() else []

    def issue(
        self,
        name: str,
        *,
        spiffe_id: str | None = None,
        dns_names: tuple[str, ...] = (),
        uris: tuple[str, ...] = (),
        common_name: str | None = None,
        server_hosts: tuple[str, ...] = (),
        days: int = 30,
        via_intermediate: bool = False,
    ) -> IssuedCertificate:
        _check_name(name)
        ca = self.intermediate() if via_intermediate else self.root()
        issued = _issue(
            ca,
            spiffe_id=spiffe_id,
            dns_names=dns_names,
            uris=uris,
            common_name=common_name,
            server_hosts=server_hosts,
            lifetime=dt.timedelta(days=days),
        )
        issued.write(self.path, name)
        self._record(name, issued, "intermediate" if via_intermediate else "root")
        return issued

    def _record(self, name: str, issued: IssuedCertificate, issuer: str) -> None:
        """Index ``issued`` under ``name``, replacing an earlier certificate of that name."""
        entries = [e for e in self._entries() if e["name"] != name]
        entries.append(
            {
                "name": name,
                "serial": f"{issued.certificate.serial_number:x}",
                "issuer": issuer,
                "names": [str(v.value) for v in subject_alt_names(issued.certificate)],
                "not_after": issued.certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "revoked": False,
            }
        )
        self.index.write_text(json.dumps(entries, indent=2) + "\n")

    def revoke(self, name: str) -> None:
        entries = self._entries()
        matches = [e for e in entries if e["name"] == name]
        if not matches:
            raise PkiError(f"no certificate named {name!r} in {self.index}")
        for entry in matches:
            entry["revoked"] = True
        self.index.write_text(json.dumps(entries, indent=2) + "\n")
        self.write_crls()

    def write_crls(self, *, days: int = 7) -> list[Path]:
        """Rewrite the CRL of the root (and of the intermediate) from the index."""
        entries = self._entries()
        written = []
        cas = [("root", self.root(), self.path / "crl.pem")]
        if self.intermediate_files[0].exists():
            cas.append(("intermediate", self.intermediate(), self.path / "intermediate-crl.pem"))
        for issuer, ca, path in cas:
            revoked = [
                int(e["serial"], 16) for e in entries if e["revoked"] and e["issuer"] == issuer
            ]
            crl = ca.crl(revoked, next_update=dt.timedelta(days=days))
            path.write_bytes(crl.public_bytes(Encoding.PEM))
            written.append(path)
        return written


def _check_name(name: str) -> None:
    # Names become file names in the directory, next to the CA's own files.
    if not _NAME.fullmatch(name):
        raise PkiError(f"certificate name {name!r}: use letters, digits, '.', '_' and '-'")
    if name in _RESERVED:
        raise PkiError(f"certificate name {name!r} is reserved")


def _issue(
    ca: CertificateAuthority,
    *,
    spiffe_id: str | None,
    dns_names: tuple[str, ...],
    uris: tuple[str, ...],
    common_name: str | None,
    server_hosts: tuple[str, ...],
    lifetime: dt.timedelta,
) -> IssuedCertificate:
    """A server certificate when ``server_hosts`` are given, else a client one."""
    if server_hosts:
        if spiffe_id or dns_names or uris:
            raise PkiError("a server certificate takes --server hosts only")
        return ca.issue_server(server_hosts, lifetime=lifetime)
    if not (spiffe_id or dns_names or uris or common_name):
        raise PkiError("name the client: --spiffe-id, --dns, --uri or --cn")
    return ca.issue_client(
        spiffe_id=spiffe_id,
        dns_names=dns_names,
        uris=uris,
        common_name=common_name,
        lifetime=lifetime,
    )
