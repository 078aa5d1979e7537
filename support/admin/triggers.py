"""Trigger identities and their feeds in the support console."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from core.admin import FastAdmin, ReadOnlyAdmin, RecentInline, diagnosis_url
from protocol.registry import registry
from support.services import ActionRefused, support_realtime_resend
from triggers.models import DeliveryStatus, RealtimeAttempt, RealtimeDelivery, TriggerFeedItem, TriggerIdentity


class TriggerSlugFilter(admin.SimpleListFilter):
    """Choices from the catalog, so the filter costs no DISTINCT over the table."""

    title = "trigger"
    parameter_name = "trigger_slug"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(slug, spec.label) for slug, spec in sorted(registry.triggers.items())]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(trigger_slug=self.value()) if self.value() else queryset


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("deleted", "Deleted by IFTTT")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class DeliveryInline(RecentInline):
    """The identity's newest Realtime notifications (one delivery may carry up to 1000 identities)."""

    model = RealtimeDelivery.trigger_identities.through
    fk_name = "triggeridentity"
    verbose_name = "Realtime notification"
    verbose_name_plural = "recent Realtime notifications"
    fields = ("realtimedelivery", "sent", "result")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("realtimedelivery")

    @admin.display(description="created")
    def sent(self, row: Any) -> Any:
        return row.realtimedelivery.created_at

    @admin.display(description="result")
    def result(self, row: Any) -> str:
        delivery = row.realtimedelivery
        status = f" → HTTP {delivery.response_status}" if delivery.response_status else ""
        resent = f", resent {delivery.resends}×" if delivery.resends else ""
        summary = f"{delivery.get_status_display()}{status}, {delivery.attempts} attempt(s){resent}"
        return f"{summary} {delivery.error}".strip()


@admin.register(TriggerIdentity)
class TriggerIdentityAdmin(FastAdmin):
    list_display = (
        "identity",
        "user",
        "trigger_slug",
        "fields",
        "first_seen_at",
        "last_polled_at",
        "last_notified_at",
        "deleted_at",
        "diagnose",
    )
    list_filter = (TriggerSlugFilter, LiveFilter)
    list_select_related = ("user",)
    search_fields = ("=identity", "=user__email", "=user__username")
    search_exact = ("identity",)
    raw_id_fields = ("user",)
    ordering = ("-id",)
    readonly_fields = (
        "identity",
        "user",
        "trigger_slug",
        "fields",
        "first_seen_at",
        "last_polled_at",
        "last_notified_at",
        "deleted_at",
        "feed_complete",
        "diagnose",
    )
    actions = ["resend_realtime"]
    inlines = [DeliveryInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="")
    def diagnose(self, identity: TriggerIdentity) -> str:
        url = diagnosis_url(identity.identity)
        return format_html('<a href="{}">Diagnose</a>', url)

    def has_resend_realtime_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("support.resend_realtime"))

    @admin.action(description="Resend a Realtime notification", permissions=["resend_realtime"])
    def resend_realtime(self, request: HttpRequest, queryset: QuerySet[TriggerIdentity]) -> None:
        for identity in queryset[:100]:
            try:
                support_realtime_resend(actor=request.user, identity=identity)
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
                continue
            self.message_user(request, f"Realtime notification sent for {identity.identity}.")


@admin.register(TriggerFeedItem)
class TriggerFeedItemAdmin(ReadOnlyAdmin):
    list_display = ("identity", "event", "occurred_at", "created_at")
    list_select_related = ("identity", "event__device")
    search_fields = ("=identity__identity",)
    search_exact = ("identity__identity",)
    search_user_field = None
    raw_id_fields = ("identity", "event")
    ordering = ("-id",)
    readonly_fields = ("identity", "event", "occurred_at", "created_at")


class DeliveryStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(DeliveryStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(status=self.value()) if self.value() else queryset


class AttemptInline(RecentInline):
    """Every request made for the delivery (the newest 50): when, IFTTT's answer, how long, what failed."""

    model = RealtimeAttempt
    fk_name = "delivery"
    limit = 50
    order_by = ("-number",)
    verbose_name = "attempt"
    verbose_name_plural = "attempts (newest first; each sent with the delivery's X-Request-ID)"
    fields = ("number", "started_at", "outcome", "response_status", "duration", "identity_count", "error")
    readonly_fields = fields
    show_change_link = False

    @admin.display(description="duration")
    def duration(self, attempt: RealtimeAttempt) -> str:
        return "—" if attempt.duration_ms is None else f"{attempt.duration_ms:,.0f} ms"


@admin.register(RealtimeDelivery)
class RealtimeDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "request_id",
        "status",
        "identity_count",
        "attempts",
        "resends",
        "response_status",
        "latency_ms",
        "completed_at",
        "error",
    )
    list_filter = (DeliveryStatusFilter,)
    inlines = [AttemptInline]
    search_fields = ("=request_id", "=origin_request_id", "=trigger_identities__identity")
    search_exact = ("request_id", "origin_request_id", "trigger_identities__identity")
    search_user_field = None
    ordering = ("-created_at", "-id")
    sortable_by = ()
    exclude = ("trigger_identities",)
    readonly_fields = (
        "request_id",
        "status",
        "identities",
        "identity_count",
        "origin_request_id",
        "attempts",
        "resends",
        "next_attempt_at",
        "pending_since",
        "created_at",
        "completed_at",
        "latency_ms",
        "response_status",
        "error",
    )
