from __future__ import annotations

import sys
from types import FrameType

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

        # Invalid settings stop every process here, with the key named.
        install(get_settings().redact)
        # So do unusable files (anchors, intermediates, CRLs): get_wsgi_application() and
        # get_asgi_application() fail rather than a server starting that answers every webhook
        # 503. Management commands report the same as system check errors instead (which stop
        # runserver, check and the commands that run checks), so `migrate` or `check` work
        # where the files are not mounted.
        if not _in_management_command():
            start_guard()


def _in_management_command() -> bool:
    """Whether Django is being set up by ``manage.py`` / ``django-admin`` (on the call stack)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "django.core.management":
            return True
        frame = frame.f_back
    return False
