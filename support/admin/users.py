"""Users, with everything about their IFTTT life inline; IFTTT's OAuth rows with secrets hidden."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from accounts.formatting import expiry
from accounts.models import User
from accounts.selectors import fields_readable
from actions.models import ActionRun
from core.admin import CappedCountPaginator, ReadOnlyAdmin, RecentInline, diagnosis_url
from devices.models import Device, DeviceEvent
from protocol.models import ApiCall
from protocol.registry import registry
from support.models import IftttAccessToken, IftttGrant, IftttIDToken, IftttRefreshToken
from support.selectors import user_timeline
from support.services import ActionRefused, support_ifttt_disconnect
from triggers.models import TriggerIdentity


class DeviceInline(RecentInline):
    model = Device
    fk_name = "owner"
    limit = 20
    order_by = ("room", "name", "id")
    fields = ("name", "kind", "room", "is_on", "online", "api_key_prefix", "updated_at")


class TokenInline(RecentInline):
    model = IftttAccessToken
    verbose_name = "IFTTT token"
    verbose_name_plural = "IFTTT connection (tokens)"
    fields = ("masked_token", "application", "scope", "created", "expires_in_words", "last_used")
    readonly_fields = fields

    @admin.display(description="expires")
    def expires_in_words(self, token: AccessToken) -> str:
        return expiry(token.expires)

    @admin.display(description="token")
    def masked_token(self, token: AccessToken) -> str:
        return f"…{(token.token_checksum or '')[12:16]}"

    @admin.display(description="last used by IFTTT")
    def last_used(self, token: AccessToken) -> Any:
        fingerprint = (token.token_checksum or "")[:16]
        if not fingerprint:
            return "—"
        return (
            ApiCall.objects.filter(token_fingerprint=fingerprint, status_code__lt=400)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
            or "never"
        )


class TriggerIdentityInline(RecentInline):
    model = TriggerIdentity
    verbose_name_plural = "trigger identities"
    limit = 20
    order_by = ("-first_seen_at", "-id")
    fields = (
        "identity",
        "trigger_name",
        "set_to",
        "first_seen_at",
        "last_polled_at",
        "last_notified_at",
        "deleted_at",
        "diagnose",
    )
    readonly_fields = fields

    @admin.display(description="trigger")
    def trigger_name(self, identity: TriggerIdentity) -> str:
        spec = registry.triggers.get(identity.trigger_slug)
        return spec.label if spec else identity.trigger_slug

    @admin.display(description="set to")
    def set_to(self, identity: TriggerIdentity) -> str:
        spec = registry.triggers.get(identity.trigger_slug)
        values = fields_readable(spec=spec, user=identity.user, fields=identity.fields or {})
        return "; ".join(f"{v.label} {v.value}" for v in values) or "(no fields)"

    @admin.display(description="")
    def diagnose(self, identity: TriggerIdentity) -> str:
        url = diagnosis_url(identity.identity)
        return format_html('<a href="{}">Diagnose</a>', url)


class EventInline(RecentInline):
    model = DeviceEvent
    fk_name = "owner"
    verbose_name_plural = "recent device events (newest recorded first)"
    # The primary key orders events as they were recorded; an owner-wide occurred_at order has no
    # index and would sort every event the user ever had.
    order_by = ("-id",)
    fields = ("occurred_at", "type", "device", "value", "source", "public_id")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("device")


class ApiCallInline(RecentInline):
    model = ApiCall
    verbose_name_plural = "recent API calls from IFTTT"
    order_by = ("-created_at", "-id")
    fields = (
        "created_at",
        "method",
        "endpoint",
        "slug",
        "status_code",
        "items_returned",
        "request_id",
        "error_message",
    )
    readonly_fields = fields


class ActionRunInline(RecentInline):
    model = ActionRun
    order_by = ("-created_at", "-id")
    fields = ("created_at", "action_slug", "status", "message", "request_id")
    readonly_fields = fields


def _realtime_inline() -> type[RecentInline] | None:
    """Realtime deliveries inline, where the triggers app records them per user."""
    from support.selectors import realtime_delivery_model

    model = realtime_delivery_model()
    if model is None:
        return None
    fk = next(
        (f.name for f in model._meta.get_fields() if getattr(f, "related_model", None) is User and f.concrete), None
    )
    if fk is None:
        return None
    shown = tuple(
        f.name
        for f in model._meta.concrete_fields
        if f.name not in ("id", fk) and f.get_internal_type() not in ("JSONField", "TextField")
    )[:8]
    return type(
        "RealtimeDeliveryInline",
        (RecentInline,),
        {"model": model, "fk_name": fk, "fields": shown, "readonly_fields": shown, "__module__": __name__},
    )


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_ifttt_test_user", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "is_ifttt_test_user", "groups")
    search_fields = ("=email", "=username", "=public_id")
    readonly_fields = ("public_id", "last_login", "date_joined")
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("IFTTT", {"fields": ("public_id", "is_ifttt_test_user")}),
    )
    actions = ["disconnect_ifttt"]

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[Any]]:
        if obj is None:
            return []
        inlines: list[type[Any]] = [
            DeviceInline,
            TokenInline,
            TriggerIdentityInline,
            EventInline,
            ApiCallInline,
            ActionRunInline,
        ]
        realtime = _realtime_inline()
        if realtime is not None:
            inlines.insert(5, realtime)
        return inlines

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        person = User.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        extra_context = {**(extra_context or {}), "timeline": user_timeline(user=person) if person else None}
        return super().change_view(request, object_id, form_url, extra_context)

    def has_disconnect_ifttt_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("support.disconnect_ifttt"))

    @admin.action(description="Disconnect IFTTT (revoke its tokens)", permissions=["disconnect_ifttt"])
    def disconnect_ifttt(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset[:100]:
            try:
                count = support_ifttt_disconnect(actor=request.user, user=user)
            except ActionRefused as refused:
                self.message_user(request, f"{user}: {refused.message}", messages.ERROR)
                continue
            self.message_user(request, f"{user}: IFTTT disconnected ({count} token(s) revoked).", messages.SUCCESS)


# --- IFTTT's OAuth rows: the provider's own admin shows raw tokens and secrets, so replace it. ------

for _model in (Application, AccessToken, RefreshToken, Grant, IDToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ("name", "client_id", "client_type", "authorization_grant_type", "updated")
    search_fields = ("name", "=client_id")
    search_exact = ("client_id", "name__iexact")
    search_user_field = None
    exclude = ("client_secret",)
    raw_id_fields = ("user",)


class _TokenAdmin(ReadOnlyAdmin):
    raw_id_fields = ("user",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "Disconnect IFTTT" on the user revokes tokens, and is recorded

    list_select_related = ("user", "application")
    search_fields = ("=user__email", "=user__username")

    @admin.display(description="token")
    def masked(self, obj: Any) -> str:
        checksum = getattr(obj, "token_checksum", "") or ""
        return f"…{checksum[12:16]}" if checksum else "hidden"


@admin.register(IftttAccessToken)
class AccessTokenAdmin(_TokenAdmin):
    list_display = ("masked", "user", "application", "created", "expires_in_words")
    fields = ("masked", "user", "application", "scope", "created", "updated", "expires_in_words")
    readonly_fields = fields

    @admin.display(description="expires")
    def expires_in_words(self, token: AccessToken) -> str:
        return expiry(token.expires)


@admin.register(IftttRefreshToken)
class RefreshTokenAdmin(_TokenAdmin):
    list_display = ("masked", "user", "application", "created", "revoked")
    fields = ("masked", "user", "application", "created", "updated", "revoked")
    readonly_fields = fields


@admin.register(IftttGrant)
class GrantAdmin(_TokenAdmin):
    list_display = ("masked", "user", "application", "created", "expires")
    fields = ("masked", "user", "application", "redirect_uri", "scope", "created", "expires")
    readonly_fields = fields


@admin.register(IftttIDToken)
class IDTokenAdmin(_TokenAdmin):
    list_display = ("masked", "user", "application", "created", "expires")
    fields = ("masked", "user", "application", "scope", "created", "expires")
    readonly_fields = fields
