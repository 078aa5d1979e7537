import uuid

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
    # The Realtime outbox: set (if unset) in the transaction that puts an event on this identity's
    # feed, cleared when a notification claims it. Events arriving while it is set coalesce into
    # that one notification, and a broker outage loses nothing: the sweep finds what is still set.
    notify_pending_since = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the event report (or poll, or support action) that set the mark: a failed
    # notification's log line names the request that caused it.
    notify_request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name_plural = "trigger identities"
        indexes = [
            # Fan-out: the live identities of an event's owner.
            models.Index(fields=("user",), condition=Q(deleted_at__isnull=True), name="identity_live_by_user"),
            # Realtime claims: the few identities waiting for a notification, oldest first.
            models.Index(
                fields=("notify_pending_since",),
                condition=Q(notify_pending_since__isnull=False, deleted_at__isnull=True),
                name="identity_notify_pending",
            ),
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


class DeliveryStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    DELIVERED = "delivered", "Delivered"
    DROPPED = "dropped", "Dropped (IFTTT refused it)"
    # No longer given: retries never give up (rows from before that keep it).
    FAILED = "failed", "Failed (gave up retrying)"


OPEN_DELIVERY_STATUSES = (DeliveryStatus.SENDING, DeliveryStatus.RETRYING)


def _request_id() -> str:
    return uuid.uuid4().hex


class RealtimeDelivery(models.Model):
    """One request to IFTTT's Realtime API and its attempts: what support reads to see a notification.

    The row is the unit of work. It is created in the transaction that claims its identities, so
    an identity is in exactly one delivery per pending period; `next_attempt_at` is the lease
    while a worker sends it (a worker that dies mid-send lets the lease lapse and the sweep takes
    over) and the retry time while it waits. Every attempt reuses `request_id` as X-Request-ID,
    so a resend after a crash is recognisably the same notification.
    """

    request_id = models.CharField(max_length=32, unique=True, default=_request_id, editable=False)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.SENDING)
    # The `trigger_identity` values sent (at most 1000, IFTTT's limit per request).
    identities = models.JSONField(default=list)
    identity_count = models.PositiveIntegerField(default=0)
    # The same identities as rows, so support finds an identity's notifications by index.
    trigger_identities = models.ManyToManyField(TriggerIdentity, related_name="realtime_deliveries", blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts made because an earlier attempt's answer was never recorded (its worker died, or the
    # database went away before the answer was written): IFTTT may have seen the notification twice.
    resends = models.PositiveIntegerField(default=0)
    # The X-Request-ID of the request whose event started it (see TriggerIdentity.notify_request_id).
    origin_request_id = models.CharField(max_length=64, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The oldest pending mark among the identities: where the notification's latency starts.
    pending_since = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True, help_text="From the first event's commit to IFTTT's 2xx.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "realtime deliveries"
        ordering = ("-created_at", "-id")
        indexes = [
            # The sweep: open deliveries whose lease lapsed or whose retry is due.
            models.Index(
                fields=("next_attempt_at",),
                condition=Q(status__in=OPEN_DELIVERY_STATUSES),
                name="realtime_delivery_due",
            ),
            models.Index(fields=("-created_at",), name="realtime_delivery_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(identity_count__lte=1000), name="realtime_delivery_at_most_1000_identities"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} · {self.identity_count} identities · {self.get_status_display()}"


class AttemptOutcome(models.TextChoices):
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    RETRY = "retry", "Failed, will retry"
    REFUSED = "refused", "Refused by IFTTT"
    UNANSWERED = "unanswered", "Answer never recorded (sent again)"


class RealtimeAttempt(models.Model):
    """One request to IFTTT's Realtime API: support sees every attempt of a delivery, not only the last.

    Written (as SENDING) in the transaction that takes the delivery's lease, and finished with the
    answer; one still SENDING when the next attempt takes over lost its worker or its database.
    """

    delivery = models.ForeignKey(RealtimeDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.SENDING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    identity_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("delivery", "number")
        constraints = [
            models.UniqueConstraint(fields=("delivery", "number"), name="realtime_attempt_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number} · {self.get_outcome_display()}"


class RealtimeDispatchSlot(models.Model):
    """One row: when the pending dispatch task is due, so at most one is queued at a time.

    A recording transaction enqueues a dispatch only if it can set `due_at` (empty, or stale because
    its task was lost); the task clears it when it starts. A flood of events is one task per window.
    """

    due_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"dispatch due {self.due_at or 'never'}"
