from django.conf import settings
from django.db import models


class ApiCall(models.Model):
    """One call IFTTT made under /ifttt/: what support reads to answer "why didn't my Applet run?".

    Never holds tokens, keys or request bodies: only what identifies the call and its outcome.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    # The kind of endpoint ("trigger", "trigger_options", "action", "query", "status", …) and its slug.
    endpoint = models.CharField(max_length=40)
    slug = models.CharField(max_length=100, blank=True)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField()
    request_id = models.CharField(max_length=64, blank=True)
    realtime = models.BooleanField(default=False)
    test_mode = models.BooleanField(default=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_calls"
    )
    trigger_identity = models.CharField(max_length=255, blank=True)
    items_returned = models.IntegerField(null=True, blank=True)
    # A trigger poll's event ids (IFTTT's meta.id), newest first: which events IFTTT was shown.
    event_ids = models.JSONField(default=list, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("user", "-created_at"), name="apicall_user_time"),
            models.Index(fields=("trigger_identity", "-created_at"), name="apicall_identity_time"),
            models.Index(fields=("request_id",), name="apicall_request_id"),
            models.Index(fields=("endpoint", "-created_at"), name="apicall_endpoint_time"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status_code}"
