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
        from hookshield.django.guard import start_guard

        # Invalid settings and unusable files (anchors, intermediates, CRLs) stop the process
        # here, with the key named: get_wsgi_application() and get_asgi_application() fail
        # rather than a server starting that answers every webhook 503.
        install(get_settings().redact)
        start_guard()
