"""The guard's Django adapter: add ``"hookshield.django"`` to ``INSTALLED_APPS``.

Public: ``webhook`` (the decorator) and ``Webhook`` (the type of ``request.webhook``); DRF
classes in ``hookshield.django.drf``, the metrics view in ``hookshield.django.metrics``. Other
modules of this package are the implementation and may change between releases.
"""

from hookshield.core.pipeline import Webhook
from hookshield.django.decorators import webhook

__all__ = ["Webhook", "webhook"]
