"""A read-only admin for the certificate inventory, searchable and filterable by flag."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from hookshield.django.conf import get_settings
from hookshield.django.insight import Flag, flag_rows, load_rows
from hookshield.django.models import Certificate, Sighting


def _flags_by_fingerprint(request: HttpRequest) -> dict[str, list[Flag]]:
    """Every certificate's flags (they need all sightings): computed once per admin request."""
    flags: dict[str, list[Flag]] | None = getattr(request, "_hookshield_flags", None)
    if flags is None:
        rows = flag_rows(load_rows(), get_settings(), now=dt.datetime.now(dt.UTC))
        flags = {row.fingerprint: row.flags for row in rows}
        request._hookshield_flags = flags  # type: ignore[attr-defined]
    return flags


class FlagFilter(admin.SimpleListFilter):
    title = "flag"
    parameter_name = "flag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(flag.value, flag.value) for flag in Flag]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return queryset
        wanted = Flag(value)
        flagged = [fp for fp, flags in _flags_by_fingerprint(request).items() if wanted in flags]
        return queryset.filter(fingerprint__in=flagged)


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SightingInline(ReadOnly, admin.TabularInline):  # type: ignore[type-arg]
    model = Sighting
    fields = ("endpoint", "outcome", "code", "count", "first_seen", "last_seen")
    readonly_fields = fields
    extra = 0


@admin.register(Certificate)
class CertificateAdmin(ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    list_filter = (FlagFilter,)
    search_fields = ("name", "fingerprint", "subject", "spiffe_id", "issuer", "serial")
    readonly_fields = tuple(f.name for f in Certificate._meta.fields)
    inlines = (SightingInline,)

    def get_list_display(self, request: HttpRequest) -> tuple[Any, ...]:
        by_fingerprint = _flags_by_fingerprint(request)  # per request: never shared

        @admin.display(description="flags")
        def flags(obj: Certificate) -> str:
            return ", ".join(f.value for f in by_fingerprint.get(obj.fingerprint, ())) or "-"

        return ("name", "short_fingerprint", "issuer", "not_after", "last_seen", flags)

    @admin.display(description="fingerprint")
    def short_fingerprint(self, obj: Certificate) -> str:
        return obj.fingerprint[:16]
