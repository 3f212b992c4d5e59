"""Prometheus metrics of the guard (``HOOKSHIELD["METRICS"] = True``, extra ``metrics``).

    hookshield_decisions_total{endpoint, outcome, code, identity}
    hookshield_guard_duration_seconds{endpoint}          the guard's own work per request
    hookshield_certificate_not_after_seconds{identity}   expiry of the newest certificate seen

Every label value comes from configuration or a fixed set, never from what a client sends:
endpoints not configured count as "unconfigured", identities not in any ALLOW as "other", and
codes are hookshield's rejection codes. So hostile traffic cannot create series.

Expose them with ``path("metrics/", hookshield.django.metrics.metrics_view)`` (behind your own
access control) or prometheus_client's own exporters.
"""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from hookshield.core.pipeline import Decision, Webhook
from hookshield.django.conf import Settings

__all__ = ["metrics_view"]

_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 2.5e-2, 0.1)


@functools.cache
def metrics() -> dict[str, Any]:
    """The metric objects, registered once per process."""
    return {
        "decisions": Counter(
            "hookshield_decisions",
            "Webhook decisions by the guard",
            ("endpoint", "outcome", "code", "identity"),
        ),
        "duration": Histogram(
            "hookshield_guard_duration_seconds",
            "Time the guard spent on a request",
            ("endpoint",),
            buckets=_BUCKETS,
        ),
        "not_after": Gauge(
            "hookshield_certificate_not_after_seconds",
            "Unix time the newest certificate seen for an identity expires",
            ("identity",),
        ),
    }


class MetricsObserver:
    def __init__(self, conf: Settings) -> None:
        self._endpoints = dict(conf.endpoints)
        self._metrics = metrics()
        self._newest: dict[str, float] = {}  # identity label -> latest not_after seen
        # Label children by label values (bounded, see above): labels() costs microseconds.
        self._counters: dict[tuple[str, str, str, str], Any] = {}
        self._timers: dict[str, Any] = {}

    def _identity(self, decision: Decision) -> str:
        result = decision.result
        if isinstance(result, Webhook):
            return result.matched
        identity = decision.identity
        if identity is not None:
            for endpoint in self._endpoints.values():
                matched = endpoint.allow.match(identity)
                if matched is not None:
                    return matched
        return "other"

    def __call__(self, decision: Decision) -> None:
        endpoint = decision.endpoint if decision.endpoint in self._endpoints else "unconfigured"
        result = decision.result
        if isinstance(result, Webhook):
            outcome, code = "accepted", ""
        else:
            outcome, code = "refused", str(result.code)
        identity = self._identity(decision)
        labels = (endpoint, outcome, code, identity)
        counter = self._counters.get(labels)
        if counter is None:
            counter = self._counters[labels] = self._metrics["decisions"].labels(*labels)
        counter.inc()
        timer = self._timers.get(endpoint)
        if timer is None:
            timer = self._timers[endpoint] = self._metrics["duration"].labels(endpoint)
        timer.observe(decision.elapsed)
        if isinstance(result, Webhook):
            expires = result.identity.not_after.timestamp()
            if expires > self._newest.get(identity, 0.0):  # the newest certificate wins
                self._newest[identity] = expires
                self._metrics["not_after"].labels(identity).set(expires)


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
