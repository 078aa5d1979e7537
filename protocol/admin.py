"""The API log in the support console."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin, diagnosis_url

from .models import ApiCall

# The url names of the Service API: the log's `endpoint` column.
ENDPOINTS = (
    "status",
    "test-setup",
    "user-info",
    "trigger-poll",
    "trigger-field-options",
    "trigger-field-validate",
    "trigger-validate",
    "trigger-fields-validate",
    "trigger-identity",
    "action-run",
    "action-field-options",
    "query-perform",
    "query-field-options",
    "unknown",
)


class EndpointFilter(admin.SimpleListFilter):
    """Fixed choices: a DISTINCT over millions of log rows just to draw the filter would be slow."""

    title = "endpoint"
    parameter_name = "endpoint"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in ENDPOINTS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(endpoint=self.value()) if self.value() else queryset


class StatusFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("ok", "Succeeded (< 400)"),
            ("failed", "Failed (≥ 400)"),
            ("401", "Refused token (401)"),
            ("5xx", "Server error (5xx)"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "ok":
            return queryset.filter(status_code__lt=400)
        if value == "failed":
            return queryset.filter(status_code__gte=400)
        if value == "401":
            return queryset.filter(status_code=401)
        if value == "5xx":
            return queryset.filter(status_code__gte=500)
        return queryset


@admin.register(ApiCall)
class ApiCallAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "method",
        "endpoint",
        "slug",
        "status_code",
        "duration_ms",
        "user",
        "identity_link",
        "items_returned",
        "realtime",
        "test_mode",
        "request_id",
    )
    list_filter = (EndpointFilter, StatusFilter, "realtime", "test_mode")
    list_select_related = ("user",)
    # By X-Request-ID or person; an identity's calls are on its diagnosis page (linked from each row).
    search_fields = ("=request_id", "=user__email", "=user__username")
    search_exact = ("request_id",)
    raw_id_fields = ("user",)
    ordering = ("-created_at", "-id")
    sortable_by = ()
    exclude = ("token_fingerprint",)
    readonly_fields = (
        "created_at",
        "method",
        "path",
        "endpoint",
        "slug",
        "status_code",
        "duration_ms",
        "request_id",
        "realtime",
        "test_mode",
        "user",
        "trigger_identity",
        "items_returned",
        "newest_event_id",
        "error_message",
    )

    @admin.display(description="trigger identity")
    def identity_link(self, call: ApiCall) -> str:
        if not call.trigger_identity:
            return ""
        url = diagnosis_url(call.trigger_identity)
        return format_html('<a href="{}" title="Diagnose">{}</a>', url, call.trigger_identity[:24])


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyAdmin):
    """The admin log: every staff action, who did it and when (also on each object's History page)."""

    list_display = ("action_time", "user", "content_type", "object_repr", "change_message")
    list_filter = ("action_flag",)
    list_select_related = ("user", "content_type")
    search_fields = ("=object_id", "=user__username", "=user__email")
    search_exact = ("object_id",)
    raw_id_fields = ("user",)
    ordering = ("-action_time", "-id")
    sortable_by = ()
    readonly_fields = (
        "action_time",
        "user",
        "content_type",
        "object_id",
        "object_repr",
        "action_flag",
        "change_message",
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what staff did is not for staff to edit
