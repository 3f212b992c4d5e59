"""The guard's Django adapter: add ``"hookshield.django"`` to ``INSTALLED_APPS``."""

from hookshield.django.decorators import webhook

__all__ = ["webhook"]
