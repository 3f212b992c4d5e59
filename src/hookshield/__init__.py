"""hookshield: webhooks behind mutual TLS, guarded in Django and scanned from outside."""

from importlib.metadata import PackageNotFoundError, version

from hookshield.core.errors import Code, Rejection
from hookshield.core.identity import ClientIdentity

try:
    __version__ = version("hookshield")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["ClientIdentity", "Code", "Rejection", "__version__"]
