from __future__ import annotations

from django.apps import AppConfig


class HookshieldConfig(AppConfig):
    name = "hookshield.django"
    label = "hookshield"
    verbose_name = "hookshield"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hookshield.core.redact import install
        from hookshield.django import checks  # noqa: F401  (registers the system checks)
        from hookshield.django.conf import get_settings

        # Invalid settings stop the process at startup, with the key named.
        install(get_settings().redact)
