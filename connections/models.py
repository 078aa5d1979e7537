"""Connections: IFTTT's Connect webhooks as we received them, users' connection state, scripts and their runs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


def _public_id() -> str:
    return uuid.uuid4().hex


class Connection(models.Model):
    """An IFTTT connection we are the backend for, known by IFTTT's connection id.

    Created on its first webhook, or by staff in the admin to give it a runtime script.
    """

    connection_id = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    # JavaScript run on each fired trigger event (IFTTT's runtime-script API); empty means none.
    script = models.TextField(blank=True)
    script_enabled = models.BooleanField(default=True)
    # Connection-level fields, the script's `Connection.configuration`.
    configuration = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("connection_id",)

    def __str__(self) -> str:
        return self.name or self.connection_id

    @property
    def has_script(self) -> bool:
        return self.script_enabled and bool(self.script.strip())


class UserConnectionStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class UserConnection(models.Model):
    """One user's state in one connection, as the connection webhooks last reported it."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="user_connections")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ifttt_connections")
    status = models.CharField(max_length=16, choices=UserConnectionStatus.choices)
    # The IANA zone (scripts' Meta.currentUserTime) and the Rails name IFTTT sent.
    timezone = models.CharField(max_length=64, default="America/Los_Angeles")
    timezone_name = models.CharField(max_length=100, blank=True)
    # The user feature ids seen for this user (from fired triggers), oldest first.
    user_feature_ids = models.JSONField(default=list, blank=True)
    enabled_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # IFTTT's own time of the newest event applied, so a late, older webhook cannot undo a newer one.
    state_changed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("connection", "user"), name="userconnection_connection_user_unique")
        ]
        indexes = [models.Index(fields=("user", "status"), name="userconnection_user_status")]

    def __str__(self) -> str:
        return f"{self.user} · {self.connection} · {self.get_status_display()}"


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One webhook IFTTT sent, kept whatever it was, so a redelivery is recognised and a no-op.

    A row is the unit of work: the task claims it by moving it from `received` to `processing`.
    """

    public_id = models.CharField(max_length=32, unique=True, default=_public_id, editable=False)
    request_id = models.CharField(max_length=64, blank=True)
    # A hash of what the delivery says (type, event, sent_at, data, event_data): a retry with a new
    # X-Request-ID is still the same delivery.
    payload_key = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=50)
    event = models.CharField(max_length=50)
    sent_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ifttt_webhooks"
    )
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)
    message = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    # The claim on processing it; a delivery whose lease lapsed (its worker died) is processed again,
    # which is safe because processing is one transaction.
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ("-received_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("request_id",), condition=~Q(request_id=""), name="webhookdelivery_request_id_unique"
            )
        ]
        indexes = [
            models.Index(fields=("user", "-received_at"), name="webhookdelivery_user_time"),
            models.Index(fields=("status", "received_at"), name="webhookdelivery_status_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type}/{self.event} · {self.get_status_display()}"


class ScriptState(models.TextChoices):
    NONE = "none", "No script"
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    # The run ended without succeeding (the script threw, hit a limit, or its worker was stopped).
    FAILED = "failed", "Failed"


class FiredTrigger(models.Model):
    """A trigger event IFTTT reported for one of a user's connections (`trigger_subscription/fired`)."""

    delivery = models.OneToOneField(WebhookDelivery, on_delete=models.CASCADE, related_name="fired_trigger")
    user_connection = models.ForeignKey(UserConnection, on_delete=models.CASCADE, related_name="fired_triggers")
    trigger_id = models.CharField(max_length=200)
    feature_id = models.CharField(max_length=100, blank=True)
    user_feature_id = models.CharField(max_length=100, blank=True)
    user_feature_trigger_id = models.CharField(max_length=100, blank=True)
    ingredients = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField()
    # The connection's script for this event is work a task claims (pending → running → done | failed).
    script_state = models.CharField(max_length=16, choices=ScriptState.choices, default=ScriptState.NONE)
    # The claim: when a worker took the run, and until when it owns it. A run whose lease lapsed was
    # stopped (a time limit, a killed worker) and is never run again: its calls may already have gone out.
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    script_error = models.TextField(blank=True)

    class Meta:
        ordering = ("-fired_at", "-id")
        indexes = [
            models.Index(fields=("user_connection", "-fired_at"), name="firedtrigger_uc_time"),
            # The recovery sweep: the few events whose script is still to run or running.
            models.Index(
                fields=("script_state",),
                condition=Q(script_state__in=["pending", "running"]),
                name="firedtrigger_script_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trigger_id} · {self.fired_at:%Y-%m-%d %H:%M:%S}"


class ScriptRunOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (the script threw or did not compile)"
    TIMED_OUT = "timed_out", "Stopped: time limit"
    MEMORY_EXCEEDED = "memory_exceeded", "Stopped: memory limit"
    CRASHED = "crashed", "Stopped: sandbox failure"


class ScriptRun(models.Model):
    """One run of a connection's script: the event, its console output, each call made, the outcome."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="script_runs")
    fired_trigger = models.ForeignKey(
        FiredTrigger, null=True, blank=True, on_delete=models.CASCADE, related_name="script_runs"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="script_runs"
    )
    # A "Test run" from the admin: calls are recorded, never sent.
    is_test = models.BooleanField(default=False)
    script = models.TextField()
    trigger_id = models.CharField(max_length=200)
    ingredients = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=20, choices=ScriptRunOutcome.choices)
    error = models.TextField(blank=True)
    logs = models.JSONField(default=list, blank=True)
    calls = models.JSONField(default=list, blank=True)
    duration_ms = models.FloatField(default=0)
    overhead_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("connection", "-created_at"), name="scriptrun_connection_time"),
            models.Index(fields=("user", "-created_at"), name="scriptrun_user_time"),
        ]

    def __str__(self) -> str:
        kind = "Test run" if self.is_test else "Run"
        return f"{kind} · {self.trigger_id} · {self.get_outcome_display()}"


class FieldVisibility(models.TextChoices):
    SET_BY_YOU = "set_by_you", "Set by you"
    USER = "user", "Customizable by the user"


class StepKind(models.TextChoices):
    TRIGGER = "trigger", "Trigger"
    QUERY = "query", "Query"
    ACTION = "action", "Action"


class ConnectionField(models.Model):
    """How one field of a feature's trigger, query or action is configured, as in IFTTT's connection tool.

    "Set by you": `value` is sent with every run; with `overridable` it is only a default that a script
    or the backend may replace per run (`fields` in the run body), otherwise it is fixed. "Customizable
    by the user": the person chooses when enabling the connection (`value` is the default they are
    offered); a run may override their choice only if `overridable`.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="fields")
    # IFTTT's feature id (the webhook's `feature_id`, the script's Connection.currentFeatureName).
    feature_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=StepKind.choices)
    # "<service>.<slug>", e.g. "smarthome.set_light_color" or "hue.change_color".
    step_id = models.CharField(max_length=200)
    field_id = models.CharField(max_length=100)
    visibility = models.CharField(max_length=12, choices=FieldVisibility.choices, default=FieldVisibility.USER)
    value = models.CharField(max_length=2000, blank=True)
    overridable = models.BooleanField(
        default=False, help_text="Runs may replace the value (set by you) or the user's choice (customizable)."
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("connection", "position", "feature_id", "kind", "step_id", "field_id")
        constraints = [
            models.UniqueConstraint(
                fields=("connection", "feature_id", "kind", "step_id", "field_id"), name="connectionfield_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.feature_id} · {self.step_id}.{self.field_id} · {self.get_visibility_display()}"

    @property
    def rule(self) -> str:
        """The rule in the words of IFTTT's connection tool (the Hue colour example)."""
        if self.visibility == FieldVisibility.SET_BY_YOU:
            return f"Set by you: {self.value!r}" + (
                " (default; a run may override)" if self.overridable else " (fixed)"
            )
        default = f", default {self.value!r}" if self.value else ""
        return f"Customizable by the user{default}" + ("; a run may override" if self.overridable else "")


class ConnectApiCall(models.Model):
    """One request we sent to IFTTT's Connect API: the connection's "API logs"."""

    connection_id = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    # The user's public id (user/info `id`) and the user feature, when the call was for one.
    user_id = models.CharField(max_length=200, blank=True)
    user_feature_id = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    # None: no answer (timeout, refused connection).
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20)
    duration_ms = models.FloatField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "Connect API call"
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("connection_id", "-created_at"), name="connectapicall_conn_time"),
            models.Index(fields=("created_at",), name="connectapicall_time"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} · {self.status or self.outcome}"
