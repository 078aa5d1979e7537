"""Admin: connections (script with "Test run", field configuration, API logs), users' state, webhooks, runs."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .configuration import field_rule_problems
from .models import (
    ConnectApiCall,
    Connection,
    ConnectionField,
    FiredTrigger,
    ScriptRun,
    UserConnection,
    WebhookDelivery,
)
from .runtime.local import Answer, AnswerInvalid, answers_parse, error_excerpt, error_position
from .services import script_test_run
from .timezones import DEFAULT_RAILS_ZONE, zone_is_known, zone_resolve

SAMPLE_INGREDIENTS = {"title": "Street Art", "url": "https://example.com/video/1"}
SAMPLE_ANSWERS = 'youtube.get_videos_from_search=200:{"data": [{"title": "A video", "url": "https://example.com/a"}]}'


class ConnectionForm(forms.ModelForm):
    class Meta:
        model = Connection
        fields = ("connection_id", "name", "script_enabled", "script", "configuration")
        widgets = {
            "script": forms.Textarea(
                attrs={"rows": 24, "cols": 110, "spellcheck": "false", "style": "font-family: monospace;"}
            ),
        }
        help_texts = {
            "script": (
                "JavaScript (Node.js 12, ES2019 syntax) run on each fired trigger event. Globals: Trigger.id, "
                "Trigger.ingredients, Meta.currentUserTime (a moment.js moment in the user's zone), "
                "Connection.serviceUserId, .currentFeatureName, .userFeatureId, .configuration; runAction(id, body) "
                "and performQuery(id, body) return Promises of {statusCode, responseBody}. "
                "Limits: 10 s, 64 MB, 50 calls and 500 console lines per run."
            ),
            "configuration": "Connection-level fields, the script's Connection.configuration (a JSON object).",
        }

    def clean_configuration(self) -> Any:
        value = self.cleaned_data["configuration"]
        if not isinstance(value, dict):
            raise forms.ValidationError('The configuration must be a JSON object, such as {"foo": "bar"}.')
        return value


class TestRunForm(forms.Form):
    trigger_id = forms.CharField(initial="youtube.new_liked_video", help_text="The script's Trigger.id.")
    ingredients = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90, "style": "font-family: monospace;"}),
        initial=json.dumps(SAMPLE_INGREDIENTS, indent=2),
        help_text="Trigger.ingredients, a JSON object.",
    )
    answers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90, "style": "font-family: monospace;"}),
        initial=SAMPLE_ANSWERS,
        help_text=(
            "How each call is answered, one per line: ID=STATUS[:JSON], e.g. <code>sms.send_me_text=422</code> "
            "to see how the script handles an error. Several lines for one id answer its calls in turn. "
            'A call with no line here gets 200 with {} (an action) or {"data": []} (a query).'
        ),
    )
    user = forms.CharField(required=False, help_text="Username or user id for Connection.serviceUserId (optional).")
    feature_name = forms.CharField(
        required=False,
        help_text="Connection.currentFeatureName: whose field configuration the calls follow (optional).",
    )
    user_feature_id = forms.CharField(required=False, help_text="Connection.userFeatureId (optional).")
    timezone = forms.CharField(initial=DEFAULT_RAILS_ZONE, help_text="A Rails zone name or an IANA zone.")
    now = forms.DateTimeField(
        required=False,
        help_text="Meta.currentUserTime, e.g. 2024-07-01 21:30 (in the zone above; default: now).",
    )

    def _json_object(self, name: str) -> dict[str, Any]:
        raw = self.cleaned_data.get(name) or "{}"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("This must be a JSON object, {…}.")
        return value

    def clean_ingredients(self) -> dict[str, Any]:
        return self._json_object("ingredients")

    def clean_answers(self) -> dict[str, list[Answer]]:
        try:
            return answers_parse((self.cleaned_data.get("answers") or "").splitlines())
        except AnswerInvalid as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        now = cleaned.get("now")
        if now is not None and cleaned.get("timezone"):
            # The form reads the time in the site's zone; the author meant the user's wall clock.
            cleaned["now"] = now.replace(tzinfo=zone_resolve(cleaned["timezone"]))
        return cleaned

    def clean_user(self) -> Any:
        name = (self.cleaned_data.get("user") or "").strip()
        if not name:
            return None
        user = (
            get_user_model().objects.filter(username=name).first()
            or get_user_model().objects.filter(public_id=name).first()
        )
        if user is None:
            raise forms.ValidationError(f"No user has the username or id “{name}”.")
        return user

    def clean_timezone(self) -> str:
        value = (self.cleaned_data.get("timezone") or "").strip()
        if value and not zone_is_known(value):
            raise forms.ValidationError(
                f"“{value}” is not a time zone. Use e.g. “{DEFAULT_RAILS_ZONE}” or “Europe/Paris”."
            )
        return value


class ConnectionFieldForm(forms.ModelForm):
    class Meta:
        model = ConnectionField
        fields = ("feature_id", "kind", "step_id", "field_id", "visibility", "value", "overridable", "position")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        candidate = ConnectionField(
            **{name: cleaned.get(name) for name in ("feature_id", "kind", "step_id", "field_id", "visibility")},
            value=cleaned.get("value") or "",
            overridable=bool(cleaned.get("overridable")),
        )
        for name, message in field_rule_problems(candidate).items():
            self.add_error(name, message)
        return cleaned


class ConnectionFieldInline(admin.TabularInline):
    """The feature's trigger, query and action fields, each set by you or customizable by the user."""

    model = ConnectionField
    form = ConnectionFieldForm
    extra = 0
    fields = ("feature_id", "kind", "step_id", "field_id", "visibility", "value", "overridable", "position", "rule")
    readonly_fields = ("rule",)
    verbose_name = "field configuration"
    verbose_name_plural = (
        "Field configuration: set by you (fixed, or a default a run may override) or customizable by the user"
    )

    @admin.display(description="What a run sends")
    def rule(self, obj: ConnectionField) -> str:
        return obj.rule if obj.pk else ""


class ScriptRunInline(admin.TabularInline):
    model = ScriptRun
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("created_at", "is_test", "trigger_id", "outcome", "duration_ms", "link")
    readonly_fields = fields
    ordering = ("-created_at",)
    show_change_link = False

    def link(self, obj: ScriptRun) -> str:
        url = reverse("admin:connections_scriptrun_change", args=[obj.pk])
        return format_html('<a href="{}">details</a>', url)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).order_by("-created_at")


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ("connection_id", "name", "script_enabled", "updated_at")
    search_fields = ("connection_id", "name")
    change_form_template = "admin/connections/connection/change_form.html"
    inlines = (ConnectionFieldInline,)
    # The newest calls shown on the connection's page; the whole log is one click away.
    API_LOG_SHOWN = 20

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        connection = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if connection is not None:
            context["api_calls"] = list(
                ConnectApiCall.objects.filter(connection_id=connection.connection_id)[: self.API_LOG_SHOWN]
            )
            context["api_log_url"] = (
                reverse("admin:connections_connectapicall_changelist") + f"?connection_id={connection.connection_id}"
            )
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_urls(self) -> list[Any]:
        custom = [
            path(
                "<int:pk>/test-run/",
                self.admin_site.admin_view(self.test_run_view),
                name="connections_connection_test_run",
            )
        ]
        return custom + super().get_urls()

    def test_run_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(Connection, pk=pk)
        if not self.has_change_permission(request, connection):
            messages.error(request, "You may not run this connection's script.")
            return HttpResponseRedirect(reverse("admin:connections_connection_changelist"))
        run: ScriptRun | None = None
        if request.method == "POST":
            form = TestRunForm(request.POST)
            if form.is_valid():
                run = script_test_run(
                    connection=connection,
                    script=connection.script,
                    trigger_id=form.cleaned_data["trigger_id"],
                    ingredients=form.cleaned_data["ingredients"],
                    answers=form.cleaned_data["answers"],
                    user=form.cleaned_data["user"],
                    zone_name=form.cleaned_data["timezone"],
                    feature_name=form.cleaned_data["feature_name"].strip(),
                    user_feature_id=form.cleaned_data["user_feature_id"],
                    now=form.cleaned_data["now"],
                )
        else:
            form = TestRunForm()
        position = error_position(run.error) if run is not None else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": connection,
            "title": f"Test run: {connection}",
            "form": form,
            "run": run,
            "calls_json": json.dumps(run.calls, indent=2) if run else "",
            "error_source": error_excerpt(connection.script, *position) if position else "",
        }
        return TemplateResponse(request, "admin/connections/connection/test_run.html", context)


@admin.register(UserConnection)
class UserConnectionAdmin(admin.ModelAdmin):
    list_display = ("user", "connection", "status", "timezone", "enabled_at", "disabled_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("user__username", "user__email", "user__public_id", "connection__connection_id")
    raw_id_fields = ("user", "connection")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("received_at", "type", "event", "user", "connection", "status", "message")
    list_filter = ("status", "type", "event")
    search_fields = ("request_id", "public_id", "user__username", "user__public_id", "connection__connection_id")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(FiredTrigger)
class FiredTriggerAdmin(admin.ModelAdmin):
    list_display = ("fired_at", "trigger_id", "user_connection", "script_state")
    list_filter = ("script_state",)
    search_fields = ("trigger_id", "user_feature_id", "user_connection__user__username")
    readonly_fields = [f.name for f in FiredTrigger._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ScriptRun)
class ScriptRunAdmin(admin.ModelAdmin):
    list_display = ("created_at", "connection", "user", "is_test", "trigger_id", "outcome", "duration_ms")
    list_filter = ("outcome", "is_test")
    search_fields = ("connection__connection_id", "trigger_id", "user__username", "user__public_id")
    readonly_fields = [f.name for f in ScriptRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ConnectApiCall)
class ConnectApiCallAdmin(admin.ModelAdmin):
    """The connection's "API logs": every request we sent to IFTTT's Connect API, one row per attempt."""

    list_display = (
        "created_at",
        "connection_id",
        "method",
        "path",
        "user_id",
        "user_feature_id",
        "status",
        "outcome",
        "attempt",
        "duration_ms",
        "error",
    )
    list_filter = ("outcome", "method")
    search_fields = ("=connection_id", "=user_id", "=request_id", "path")
    readonly_fields = [f.name for f in ConnectApiCall._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
