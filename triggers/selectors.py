"""Reads for triggers: the timeline a poll returns."""

from __future__ import annotations

from typing import Any

from devices.models import DeviceEvent
from iftttsvc.registry import Fields, TriggerSpec

from .models import TriggerFeedItem, TriggerIdentity


def trigger_events_list(
    *, spec: TriggerSpec, user: Any, fields: Fields, identity: TriggerIdentity | None, limit: int
) -> list[DeviceEvent]:
    """The `limit` newest events on this trigger's timeline, newest first.

    With an identity, read its feed: `limit` rows from the (identity, occurred_at) index. Without
    one (IFTTT's docs show a poll without trigger_identity), or past the end of a truncated feed,
    use the trigger's own history query, which has an index shaped like it.
    """
    if limit <= 0:
        return []
    if identity is not None:
        # The newest `limit` ids come from a query of their own, which can only be answered by an
        # index-only scan of (identity, occurred_at, event) that stops after `limit` rows. Joined in
        # one query, PostgreSQL estimates a short feed for most identities and picks the plain
        # identity index instead: it joins and sorts the whole feed, O(history) (bench/poll.py).
        newest = (
            TriggerFeedItem.objects.filter(identity=identity)
            .order_by("-occurred_at", "-event_id")
            .values("event_id")[:limit]
        )
        # The feed repeats each event's occurred_at, so this is the feed's order.
        events = list(
            DeviceEvent.objects.filter(pk__in=newest).select_related("device").order_by("-occurred_at", "-id")
        )
        if len(events) == limit or identity.feed_complete:
            return events
    return list(spec.history(user, fields).select_related("device")[:limit])


def trigger_item(spec: TriggerSpec, event: DeviceEvent, fields: Fields) -> dict[str, Any]:
    """One timeline item: the ingredients and IFTTT's `meta` (stable id, Unix seconds)."""
    return {
        **spec.render(event, fields),
        "meta": {"id": event.public_id, "timestamp": int(event.occurred_at.timestamp())},
    }
