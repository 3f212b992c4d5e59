"""Certificate revocation lists: loaded from files, reloaded when they change, checked per chain.

Semantics follow nginx's ``ssl_crl`` (OpenSSL ``CRL_CHECK | CRL_CHECK_ALL``): once CRLs are
configured, every certificate of the verified path below the trust anchor must be covered by a
current CRL of its issuer, else its revocation status is unknown and the request is refused.
A CRL that cannot be loaded, or whose nextUpdate has passed, fails closed the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from cryptography import x509

from hookshield.core.errors import Code, Rejection

__all__ = ["RevocationLists", "load_crl"]

logger = logging.getLogger("hookshield.revocation")


@dataclass(frozen=True, slots=True)
class _Loaded:
    by_issuer: dict[x509.Name, tuple[x509.CertificateRevocationList, ...]]
    error: str | None
    stamp: tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size) per file


def _stamp(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    stamp = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            stamp.append((str(path), -1, -1))
        else:
            stamp.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stamp)


def load_crl(path: Path) -> x509.CertificateRevocationList:
    """One CRL file, PEM or DER; raises ``OSError`` or ``ValueError``."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _load(paths: Sequence[Path]) -> _Loaded:
    stamp = _stamp(paths)
    by_issuer: dict[x509.Name, list[x509.CertificateRevocationList]] = {}
    for path in paths:
        try:
            crl = load_crl(path)
        except (OSError, ValueError) as exc:
            logger.error("CRL %s could not be loaded: %s", path, exc)
            return _Loaded({}, f"CRL {path} could not be loaded: {exc}", stamp)
        by_issuer.setdefault(crl.issuer, []).append(crl)
    return _Loaded({k: tuple(v) for k, v in by_issuer.items()}, None, stamp)


class RevocationLists:
    """The configured CRLs; ``generation`` changes whenever their content is reloaded."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        reload_interval: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._paths = tuple(paths)
        self._interval = reload_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._loaded = _load(self._paths)
        self._checked_at = monotonic()
        self.generation = 0

    def __bool__(self) -> bool:
        return bool(self._paths)

    def reload(self) -> None:
        """Read the files again now, whatever their modification times say."""
        with self._lock:
            self._loaded = _load(self._paths)
            self._checked_at = self._monotonic()
            self.generation += 1

    def refresh(self) -> None:
        """Reload if a file changed; looks at the files at most once per ``reload_interval``."""
        if self._monotonic() - self._checked_at < self._interval:
            return
        with self._lock:
            self._checked_at = self._monotonic()
            if _stamp(self._paths) == self._loaded.stamp and self._loaded.error is None:
                return
            self._loaded = _load(self._paths)
            self.generation += 1

    def check(
        self, path: Sequence[x509.Certificate], now: dt.datetime
    ) -> tuple[Rejection | None, dt.datetime | None]:
        """Check each certificate of a verified path (leaf first, anchor last).

        Returns a rejection or None, and the earliest nextUpdate among the CRLs used (a cached
        verdict must not outlive it).
        """
        loaded = self._loaded
        if loaded.error is not None:
            return Rejection(Code.CLIENT_CERT_REVOCATION_UNKNOWN, loaded.error), None
        earliest: dt.datetime | None = None
        for cert, issuer in pairwise(path):
            crl = self._current_crl(loaded, issuer, now)
            if crl is None:
                return (
                    Rejection(
                        Code.CLIENT_CERT_REVOCATION_UNKNOWN,
                        f"no current CRL signed by {issuer.subject.rfc4514_string()}",
                    ),
                    None,
                )
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                return (
                    Rejection(
                        Code.CLIENT_CERT_REVOKED,
                        f"serial {cert.serial_number:x} of {cert.subject.rfc4514_string()!r} "
                        f"is on the CRL of {issuer.subject.rfc4514_string()}",
                    ),
                    None,
                )
            next_update = crl.next_update_utc
            if next_update is not None and (earliest is None or next_update < earliest):
                earliest = next_update
        return None, earliest

    @staticmethod
    def _current_crl(
        loaded: _Loaded, issuer: x509.Certificate, now: dt.datetime
    ) -> x509.CertificateRevocationList | None:
        for crl in loaded.by_issuer.get(issuer.subject, ()):
            # A CRL only counts when the issuer's own key signed it, and while it is current.
            if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                continue
            if crl.last_update_utc > now:
                continue
            if crl.next_update_utc is not None and crl.next_update_utc < now:
                continue
            return crl
        return None
