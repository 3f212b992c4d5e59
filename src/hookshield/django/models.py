"""The certificate inventory: every certificate of ours the guard has seen, and where it went.

Filled by ``hookshield.django.inventory`` when ``HOOKSHIELD["INVENTORY"]`` is on, with the
certificates that chain to a trust anchor, accepted or refused (certificates anyone could mint
are left to the log and the metrics); read by ``manage.py hookshield_inventory`` and the admin.
Writes are throttled (one per certificate and endpoint per minute), so the tables say "about
now", not "this very request".
"""

from __future__ import annotations

from django.db import models

__all__ = ["Certificate", "Delivery", "Sighting"]


class Certificate(models.Model):
    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the DER")
    name = models.CharField(
        max_length=2048, db_index=True, help_text="SPIFFE ID, else the first SAN, else the subject"
    )
    spiffe_id = models.CharField(max_length=2048, blank=True)
    dns_sans = models.JSONField(default=list, blank=True)
    uri_sans = models.JSONField(default=list, blank=True)
    common_names = models.JSONField(default=list, blank=True)
    subject = models.TextField(blank=True)
    issuer = models.TextField(blank=True)
    serial = models.CharField(max_length=64, help_text="hexadecimal")
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    networks = models.JSONField(
        default=list, blank=True, help_text="source networks (IPv4 /24, IPv6 /48), at most 64 kept"
    )

    class Meta:
        ordering = ("-last_seen",)

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint[:16]})"


class Sighting(models.Model):
    """One certificate on one endpoint with one outcome: how often, first and last."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="sightings")
    endpoint = models.CharField(max_length=64)
    outcome = models.CharField(
        max_length=16, choices=(("accepted", "accepted"), ("refused", "refused"))
    )
    code = models.CharField(max_length=64, blank=True, help_text="the rejection code, if refused")
    count = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ("endpoint", "outcome", "code")
        constraints = (
            models.UniqueConstraint(
                fields=("certificate", "endpoint", "outcome", "code"),
                name="hookshield_sighting_unique",
            ),
        )

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.outcome} {self.code} x{self.count}"


class Delivery(models.Model):
    """A claimed signed delivery id (the replay store on the database, ``db://<alias>``)."""

    key = models.CharField(max_length=160, primary_key=True, help_text="endpoint and id digest")
    expires_at = models.DateTimeField(db_index=True)
    # NULL for a row an older hookshield wrote (during a rolling deploy): never given back.
    token = models.CharField(
        max_length=24, null=True, blank=True, help_text="the claim's own (random, hexadecimal)"
    )

    class Meta:
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return self.key
