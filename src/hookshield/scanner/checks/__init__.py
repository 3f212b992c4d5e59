"""One module per category; importing this package registers every check."""

from hookshield.scanner.checks import (  # noqa: F401
    auth,
    authz,
    exposure,
    input,
    inventory,
    rate,
    replay,
    tls,
)
