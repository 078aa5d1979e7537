import uuid

from django.conf import settings
from django.db import models


def _run_public_id() -> str:
    return uuid.uuid4().hex


class ActionRunStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class ActionRun(models.Model):
    """One call of an IFTTT action, whatever its outcome: what support reads to explain an Applet."""

    public_id = models.CharField(max_length=32, unique=True, default=_run_public_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="action_runs")
    action_slug = models.CharField(max_length=100)
    fields = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ActionRunStatus.choices)
    message = models.TextField(blank=True)
    # The event the action recorded, if it changed anything.
    event = models.ForeignKey(
        "devices.DeviceEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="action_runs"
    )
    request_id = models.CharField(max_length=64, blank=True)
    ifttt_source = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("user", "-created_at"), name="actionrun_user_time")]

    def __str__(self) -> str:
        return f"{self.action_slug} · {self.get_status_display()} · {self.created_at:%Y-%m-%d %H:%M:%S}"
