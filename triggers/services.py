"""Writes for triggers: trigger identities and their feeds.

A poll is answered from the identity's feed (`TriggerFeedItem`), an index that matches it exactly,
so it costs O(limit) however long the user's history is. Feeds are written in two places: when an
event is recorded (`feed_fan_out`, in the recording transaction) and once from history when an
identity is first seen (`_feed_backfill`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.db import ASYNC_COMMIT_FROM, async_commit_available
from devices.models import DeviceEvent
from protocol.registry import Fields, TriggerSpec, registry

from .models import TriggerFeedItem, TriggerIdentity
from .realtime import realtime_pending_mark

logger = logging.getLogger(__name__)

# How much history a new identity's feed starts with. A poll asking for more than a truncated
# feed holds falls back to the history query (see selectors.trigger_events_list).
FEED_BACKFILL = 200


def _feed_backfill(identity: TriggerIdentity, spec: TriggerSpec) -> None:
    events = list(spec.history(identity.user, identity.fields).values_list("id", "occurred_at")[:FEED_BACKFILL])
    TriggerFeedItem.objects.bulk_create(
        [TriggerFeedItem(identity=identity, event_id=pk, occurred_at=at) for pk, at in events],
        ignore_conflicts=True,
    )
    complete = len(events) < FEED_BACKFILL
    if identity.feed_complete != complete:
        identity.feed_complete = complete
        identity.save(update_fields=["feed_complete"])


def trigger_identity_touch(*, identity: str, user: Any, spec: TriggerSpec, fields: Fields) -> TriggerIdentity | None:
    """A poll's fast path: mark a known, live identity of this user, trigger and fields as polled.

    One statement. None when the identity is anything else (new, deleted, another user's, other
    fields): the caller then validates the fields and takes `trigger_identity_record`. Its fields
    were validated when it was recorded, so a poll of a known identity does not check them again.
    """
    now = timezone.now()
    if async_commit_available():
        # Last-polled is bookkeeping: its commit need not wait for the disk (see core.db).
        table = connection.ops.quote_name(TriggerIdentity._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last_polled_at = %s FROM {ASYNC_COMMIT_FROM} "  # noqa: S608 - names from the model
                "WHERE identity = %s AND user_id = %s AND deleted_at IS NULL "
                "RETURNING id, trigger_slug, fields, feed_complete",
                [now, identity, user.pk],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        pk, slug, stored, complete = row
        stored = json.loads(stored) if isinstance(stored, str) else stored
        current = TriggerIdentity(
            pk=pk, identity=identity, user_id=user.pk, trigger_slug=slug, fields=stored, feed_complete=complete
        )
    else:
        found = (
            TriggerIdentity.objects.filter(identity=identity, user=user, deleted_at__isnull=True)
            .only("id", "identity", "user_id", "trigger_slug", "fields", "feed_complete")
            .first()
        )
        if found is None:
            return None
        TriggerIdentity.objects.filter(pk=found.pk).update(last_polled_at=now)
        current = found
    if current.trigger_slug != spec.slug or current.fields != dict(fields):
        return None
    current.last_polled_at = now
    return current


def trigger_identity_record(
    *, identity: str | None, user: Any, spec: TriggerSpec, fields: Fields
) -> TriggerIdentity | None:
    """Record a poll of `identity`: create it on first sight (with its feed), else mark it polled.

    A poll of a tombstoned identity means an Applet uses it again, so it is revived. An identity
    belongs to the user who first polled it: another user's poll with it changes nothing and is
    answered like a poll without one (None), so it learns nothing about the identity either.
    """
    if not identity:
        return None
    now = timezone.now()
    fields = dict(fields)
    current = TriggerIdentity.objects.filter(identity=identity).first()
    if current is not None and current.user_id != user.pk:
        return None
    if current is not None and current.is_live and current.user_id == user.pk and current.fields == fields:
        TriggerIdentity.objects.filter(pk=current.pk).update(last_polled_at=now)
        current.last_polled_at = now
        return current
    with transaction.atomic():
        current, created = TriggerIdentity.objects.select_for_update().get_or_create(
            identity=identity,
            defaults={"user": user, "trigger_slug": spec.slug, "fields": fields, "last_polled_at": now},
        )
        if not created:
            if current.user_id != user.pk:
                return None  # first polled by another user a moment ago
            # Revived, or re-pointed at other fields: rebuild its feed.
            current.feed.all().delete()
            current.trigger_slug = spec.slug
            current.fields = fields
            current.deleted_at = None
            current.last_polled_at = now
            current.save(update_fields=["trigger_slug", "fields", "deleted_at", "last_polled_at"])
        _feed_backfill(current, spec)
    return current


def trigger_identity_delete(*, user: Any, identity: str) -> TriggerIdentity | None:
    """Tombstone `identity`: it is never notified again and its feed is dropped.

    An unknown identity is fine (IFTTT may delete one it never polled). Another user's is left alone
    and answered exactly like an unknown one, so the answer does not tell that it exists.
    """
    current = TriggerIdentity.objects.filter(identity=identity, user=user).first()
    if current is None:
        return None
    with transaction.atomic():
        if current.deleted_at is None:
            current.deleted_at = timezone.now()
            current.save(update_fields=["deleted_at"])
        current.feed.all().delete()
    return current


def feed_fan_out(events: Sequence[DeviceEvent]) -> list[int]:
    """Put new events on the feeds of the live identities they match. Returns those identities' ids.

    Runs inside the recording transaction, so a poll never sees an event without it being on the
    feeds, and a rolled-back event is on none.
    """
    by_owner: dict[int, list[DeviceEvent]] = defaultdict(list)
    for event in events:
        by_owner[event.owner_id].append(event)
    items: list[TriggerFeedItem] = []
    matched: set[int] = set()
    identities = TriggerIdentity.objects.filter(user_id__in=by_owner.keys(), deleted_at__isnull=True).only(
        "id", "user_id", "trigger_slug", "fields"
    )
    for identity in identities:
        spec = registry.triggers.get(identity.trigger_slug)
        if spec is None:
            continue
        for event in by_owner[identity.user_id]:
            if spec.matches(event, identity.fields):
                items.append(TriggerFeedItem(identity_id=identity.pk, event=event, occurred_at=event.occurred_at))
                matched.add(identity.pk)
    if items:
        TriggerFeedItem.objects.bulk_create(items, ignore_conflicts=True)
        ids = sorted(matched)
        # The Realtime outbox mark, in this transaction: the notification exists exactly when the events do.
        realtime_pending_mark(identity_ids=ids)
    return sorted(matched)


def on_events_recorded(sender: Any, events: Sequence[DeviceEvent], **kwargs: Any) -> None:
    feed_fan_out(events)


def realtime_notification_resend(*, identity: TriggerIdentity) -> None:
    """Ask IFTTT to poll `identity` now (support's "resend"): it goes through the same outbox as an event."""
    realtime_pending_mark(identity_ids=[identity.pk])
