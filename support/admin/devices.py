"""Devices and their events in the support console. API keys are never shown: only their prefix."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import FastAdmin, ReadOnlyAdmin
from devices.models import Device, DeviceEvent
from support.services import ActionRefused, support_device_set_online, support_test_event_fire


@admin.register(Device)
class DeviceAdmin(FastAdmin):
    list_display = ("name", "kind", "room", "owner", "is_on", "online", "api_key_prefix", "updated_at")
    list_filter = ("kind", "online", "is_on")
    list_select_related = ("owner",)
    search_fields = ("=name", "=public_id", "=owner__email", "=owner__username")
    search_exact = ("name__iexact", "public_id")
    search_user_field = "owner"
    raw_id_fields = ("owner",)
    ordering = ("-id",)
    exclude = ("api_key_hash",)
    readonly_fields = (
        "public_id",
        "api_key_prefix",
        "temperature",
        "temperature_measured_at",
        "created_at",
        "updated_at",
    )
    actions = ["fire_test_event", "mark_offline", "mark_online"]

    def has_fire_test_event_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("support.fire_test_event"))

    def has_set_device_online_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("support.set_device_online"))

    @admin.action(description="Fire a test event (motion, or switch)", permissions=["fire_test_event"])
    def fire_test_event(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset[:100]:
            try:
                event = support_test_event_fire(actor=request.user, device=device)
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
                continue
            self.message_user(request, f"{device.name}: recorded {event.get_type_display()} ({event.public_id}).")

    @admin.action(description="Mark offline", permissions=["set_device_online"])
    def mark_offline(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_online(request, queryset, online=False)

    @admin.action(description="Mark online", permissions=["set_device_online"])
    def mark_online(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        self._set_online(request, queryset, online=True)

    def _set_online(self, request: HttpRequest, queryset: QuerySet[Device], *, online: bool) -> None:
        devices = list(queryset[:100])
        for device in devices:
            support_device_set_online(actor=request.user, device=device, online=online)
        self.message_user(request, f"{len(devices)} device(s) marked {'online' if online else 'offline'}.")


@admin.register(DeviceEvent)
class DeviceEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "type", "device", "owner", "value", "source", "public_id")
    list_filter = ("type", "source")
    list_select_related = ("device", "owner")
    search_fields = ("=public_id", "=owner__email", "=external_id")
    search_exact = ("public_id", "external_id")
    search_user_field = "owner"
    raw_id_fields = ("device", "owner")
    # Newest recorded first, from the primary key: ordering a billion rows by occurred_at would
    # need an index the service itself never uses.
    ordering = ("-id",)
    sortable_by = ()
    readonly_fields = (
        "public_id",
        "device",
        "owner",
        "type",
        "data",
        "value",
        "previous_value",
        "occurred_at",
        "recorded_at",
        "source",
        "external_id",
    )
