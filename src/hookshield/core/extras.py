"""Optional dependencies: what ``pip install hookshield`` leaves out, and how to ask for it."""

from __future__ import annotations

from types import ModuleType

from hookshield.core.errors import ConfigurationError

__all__ = ["redis_client"]


def redis_client(key: str) -> ModuleType:
    """The Redis client library, which comes with the ``redis`` extra."""
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            f"HOOKSHIELD[{key!r}] names Redis, whose client is not installed: "
            "pip install 'hookshield[redis]'"
        ) from exc
    return redis
