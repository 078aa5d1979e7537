from django.conf import settings
from django.db import models
from django.db.models import Q

from devices.models import DeviceEvent


class TriggerIdentity(models.Model):
    """IFTTT's `trigger_identity`: one user, one trigger, one set of trigger field values.

    Recorded on every poll. DELETE tombstones it (`deleted_at`) rather than removing the row, so
    support can still see what an Applet used to watch, and so it is never notified again.
    """

    identity = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trigger_identities")
    trigger_slug = models.CharField(max_length=100)
    fields = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # False when the feed was started from a long history and holds only its newest part.
    feed_complete = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "trigger identities"
        indexes = [
            # Fan-out: the live identities of an event's owner.
            models.Index(fields=("user",), condition=Q(deleted_at__isnull=True), name="identity_live_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.trigger_slug} · {self.identity}"

    @property
    def is_live(self) -> bool:
        return self.deleted_at is None


class TriggerFeedItem(models.Model):
    """An event on one identity's timeline.

    Written when a matching event is recorded (and once, from history, when the identity is first
    seen), so a poll reads `limit` rows from one index however long the user's history is.
    `occurred_at` repeats the event's so the index alone orders the feed.
    """

    identity = models.ForeignKey(TriggerIdentity, on_delete=models.CASCADE, related_name="feed")
    event = models.ForeignKey(DeviceEvent, on_delete=models.CASCADE, related_name="feed_items")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("identity", "event"), name="feed_identity_event_unique")]
        indexes = [models.Index(fields=("identity", "-occurred_at", "-event"), name="feed_identity_time")]

    def __str__(self) -> str:
        return f"{self.identity_id} ← event {self.event_id}"
