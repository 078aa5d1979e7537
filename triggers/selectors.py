"""Reads for triggers: the timeline a poll returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection

from devices.models import Device, DeviceEvent
from protocol.registry import Fields, TimelineEvent, TriggerSpec

from .models import TriggerFeedItem, TriggerIdentity


@dataclass(frozen=True, slots=True)
class FeedDevice:
    public_id: str
    name: str
    room: str
    kind: str


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """An event as a poll renders it: the columns the ingredients need, without a model object."""

    public_id: str
    type: str
    value: float | None
    occurred_at: datetime
    device: FeedDevice


_FEED_COLUMNS = (
    "public_id",
    "type",
    "value",
    "occurred_at",
    "device__public_id",
    "device__name",
    "device__room",
    "device__kind",
)


def trigger_events_list(
    *, spec: TriggerSpec, user: Any, fields: Fields, identity: TriggerIdentity | None, limit: int
) -> list[TimelineEvent]:
    """The `limit` newest events on this trigger's timeline, newest first.

    With an identity, read its feed: `limit` rows from the (identity, occurred_at) index. Without
    one (IFTTT's docs show a poll without trigger_identity), or past the end of a truncated feed,
    use the trigger's own history query, which has an index shaped like it.
    """
    if limit <= 0:
        return []
    if identity is not None:
        rows = (
            _feed_rows_postgresql(identity.pk, limit)
            if connection.vendor == "postgresql"
            else feed_rows(identity, limit)
        )
        events = feed_events(rows)
        if len(events) == limit or identity.feed_complete:
            return events
    return history_events(spec=spec, user=user, fields=fields, limit=limit)


def history_events(*, spec: TriggerSpec, user: Any, fields: Fields, limit: int) -> list[TimelineEvent]:
    """The trigger's own history query: for a poll without an identity, or past a truncated feed."""
    return list(spec.history(user, fields).select_related("device")[:limit])


def feed_events(rows: Any) -> list[TimelineEvent]:
    """Feed rows (the columns of _FEED_COLUMNS, newest first) as the events a poll renders."""
    # Rows, not model objects: a poll builds fifty of them, and that was most of its Python time.
    # A feed is mostly one device's events: one FeedDevice per device, not per item.
    devices: dict[str, FeedDevice] = {}
    events: list[TimelineEvent] = []
    for public_id, type_, value, at, device_id, name, room, kind in rows:
        device = devices.get(device_id)
        if device is None:
            device = devices[device_id] = FeedDevice(device_id, name, room, kind)
        events.append(FeedEvent(public_id, type_, value, at, device))
    return events


def feed_rows(identity: TriggerIdentity, limit: int) -> Any:
    # The newest `limit` ids come from a query of their own, which can only be answered by an
    # index-only scan of (identity, occurred_at, event) that stops after `limit` rows. Joined in one
    # query, PostgreSQL estimates a short feed for most identities and picks the plain identity index
    # instead: it joins and sorts the whole feed, O(history) (bench/poll.py).
    newest = (
        TriggerFeedItem.objects.filter(identity=identity)
        .order_by("-occurred_at", "-event_id")
        .values("event_id")[:limit]
    )
    # The feed repeats each event's occurred_at, so this is the feed's order.
    return DeviceEvent.objects.filter(pk__in=newest).order_by("-occurred_at", "-id").values_list(*_FEED_COLUMNS)


@cache
def _feed_sql() -> str:
    feed, events, devices = (
        connection.ops.quote_name(model._meta.db_table) for model in (TriggerFeedItem, DeviceEvent, Device)
    )
    # The same read as feed_rows in one hand-written statement: the newest `limit` feed rows from the
    # (identity, occurred_at, event) index in a derived table of their own (so the scan stops at
    # `limit`), then their events and devices by primary key. Written once, not compiled per poll.
    return (
        f"SELECT e.public_id, e.type, e.value, f.occurred_at, d.public_id, d.name, d.room, d.kind "  # noqa: S608
        f"FROM (SELECT event_id, occurred_at FROM {feed} WHERE identity_id = %s "
        f"ORDER BY occurred_at DESC, event_id DESC LIMIT %s) AS f "
        f"JOIN {events} AS e ON e.id = f.event_id JOIN {devices} AS d ON d.id = e.device_id "
        f"ORDER BY f.occurred_at DESC, f.event_id DESC"
    )


def _feed_rows_postgresql(identity_id: int, limit: int) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(_feed_sql(), [identity_id, limit])
        return cursor.fetchall()


def trigger_item(spec: TriggerSpec, event: TimelineEvent, fields: Fields) -> dict[str, Any]:
    """One timeline item: the ingredients and IFTTT's `meta` (stable id, Unix seconds)."""
    return {
        **spec.render(event, fields),
        "meta": {"id": event.public_id, "timestamp": int(event.occurred_at.timestamp())},
    }
