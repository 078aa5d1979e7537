"""What triggers keep: live identities and what a poll can read; retired identities and finished
Realtime deliveries for a while, for support."""

from django.conf import settings
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from core.retention import history, kept

from .models import (
    OPEN_DELIVERY_STATUSES,
    RealtimeAttempt,
    RealtimeDelivery,
    RealtimeDispatchSlot,
    TriggerFeedItem,
    TriggerIdentity,
)

IDENTITIES_PER_PASS = 1000


def feeds_trim(batch: int) -> int:
    """Keep the newest TRIGGER_FEED_KEEP items of every feed; how many items were deleted.

    A poll asking for more than a trimmed feed holds reads the trigger's history instead (the
    identity's `feed_complete` is cleared), so trimming changes no answer, only its cost.
    """
    keep = settings.TRIGGER_FEED_KEEP
    deleted = 0
    last = 0
    while True:
        ids = list(
            TriggerIdentity.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:IDENTITIES_PER_PASS]
        )
        if not ids:
            return deleted
        last = ids[-1]
        surplus = (
            TriggerFeedItem.objects.filter(identity_id__in=ids)
            .annotate(
                position=Window(
                    RowNumber(), partition_by=F("identity_id"), order_by=[F("occurred_at").desc(), F("event_id").desc()]
                )
            )
            .filter(position__gt=keep)
            .values_list("pk", "identity_id")
        )
        rows = list(surplus)
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            deleted += TriggerFeedItem.objects.filter(pk__in=[pk for pk, _ in chunk]).delete()[0]
        trimmed = {identity for _, identity in rows}
        if trimmed:
            TriggerIdentity.objects.filter(pk__in=trimmed, feed_complete=True).update(feed_complete=False)


kept(
    TriggerIdentity,
    by="deleted_at",
    setting="TRIGGER_IDENTITY_RETENTION_DAYS",
    why="identities IFTTT deleted or stopped polling (live ones stay)",
    only=Q(deleted_at__isnull=False),
)
kept(
    TriggerFeedItem,
    by="created_at",
    setting="TRIGGER_FEED_KEEP",
    unit="items",
    why="the newest events of each identity's feed: what a poll reads",
    prune=feeds_trim,
)
kept(
    RealtimeDelivery,
    by="created_at",
    setting="REALTIME_DELIVERY_RETENTION_DAYS",
    why="each Realtime notification sent, once finished (open ones stay), with its identity links",
    only=~Q(status__in=OPEN_DELIVERY_STATUSES),
)
kept(
    RealtimeAttempt,
    by="started_at",
    setting="REALTIME_DELIVERY_RETENTION_DAYS",
    why="every attempt of each Realtime notification (when, answer, duration, error), once its delivery is finished",
    only=~Q(delivery__status__in=OPEN_DELIVERY_STATUSES),
)
history(
    RealtimeDispatchSlot,
    why="one row: when the queued Realtime dispatch task is due (at most one is queued at a time)",
)
