"""Action runs in the support console, with a replay action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from actions.models import ActionRun
from core.admin import ReadOnlyAdmin
from protocol.registry import registry
from support.services import ActionRefused, support_action_run_replay


class ActionSlugFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action_slug"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(slug, spec.label) for slug, spec in sorted(registry.actions.items())]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(action_slug=self.value()) if self.value() else queryset


@admin.register(ActionRun)
class ActionRunAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action_slug", "user", "status", "message", "request_id")
    list_filter = ("status", ActionSlugFilter)
    list_select_related = ("user",)
    search_fields = ("=request_id", "=public_id", "=user__email", "=user__username")
    search_exact = ("request_id", "public_id")
    raw_id_fields = ("user", "event")
    ordering = ("-id",)
    readonly_fields = (
        "public_id",
        "user",
        "action_slug",
        "fields",
        "status",
        "message",
        "event",
        "request_id",
        "ifttt_source",
        "created_at",
    )
    actions = ["replay"]

    def has_replay_action_run_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("support.replay_action_run"))

    @admin.action(description="Replay (run the action again with the same fields)", permissions=["replay_action_run"])
    def replay(self, request: HttpRequest, queryset: QuerySet[ActionRun]) -> None:
        for run in queryset.select_related("user")[:100]:
            try:
                replay = support_action_run_replay(actor=request.user, run=run)
            except ActionRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
                continue
            level = messages.SUCCESS if replay.status == "succeeded" else messages.WARNING
            self.message_user(
                request, f"Replayed {run.action_slug}: {replay.get_status_display()}. {replay.message}", level
            )
