"""The framework-free core: certificates, identity, sources, verification, policy, the pipeline.

Nothing under ``hookshield.core`` imports Django (a test enforces it). ``__all__`` below is what
a custom certificate source (``CERT_SOURCE = "dotted.path.Class"``) or a log configuration needs;
the submodules are the implementation and may change between releases.
"""

from hookshield.core.certs import PresentedChain
from hookshield.core.errors import (
    CertificateParseError,
    Code,
    ProxyVerifyError,
    Rejection,
    SourceError,
)
from hookshield.core.identity import ClientIdentity
from hookshield.core.redact import RedactingFilter
from hookshield.core.sources import Inbound, Source

__all__ = [
    "CertificateParseError",
    "ClientIdentity",
    "Code",
    "Inbound",
    "PresentedChain",
    "ProxyVerifyError",
    "RedactingFilter",
    "Rejection",
    "Source",
    "SourceError",
]
