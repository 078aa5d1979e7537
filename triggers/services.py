"""Writes for triggers: trigger identities and their feeds.

A poll is answered from the identity's feed (`TriggerFeedItem`), an index that matches it exactly,
so it costs O(limit) however long the user's history is. Feeds are written in two places: when an
event is recorded (`feed_fan_out`, in the recording transaction) and once from history when an
identity is first seen (`_feed_backfill`).
"""

from __future__ import annotations

import json
import logging
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.db import ASYNC_COMMIT_FROM, async_commit_available
from devices.models import Device, DeviceEvent
from protocol.auth import BearerToken, live_token_orm, live_token_sql
from protocol.registry import Fields, TriggerSpec, registry

from .models import TriggerFeedItem, TriggerIdentity
from .realtime import realtime_pending_mark
from .selectors import feed_rows

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


# --- The poll's fast path ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollRead:
    """What one round trip learns for a poll: whose live token it is, and (when the identity is theirs
    and live, now marked polled) the identity and its feed's newest rows."""

    token: BearerToken
    identity: TriggerIdentity | None
    rows: list[tuple[Any, ...]]


@cache
def _poll_sql() -> str:
    quote = connection.ops.quote_name
    identities, feed, events, devices = (
        quote(model._meta.db_table) for model in (TriggerIdentity, TriggerFeedItem, DeviceEvent, Device)
    )
    # The token, trigger_identity_touch's UPDATE and selectors._feed_sql's read in one statement: one
    # round trip and one commit instead of three. The feed's newest `limit` rows still come from the
    # (identity, occurred_at, event) index in a LIMIT of their own (O(limit), bench/poll.py checks the
    # plan). The UPDATE sees only a live token; its commit need not wait for the disk (core.db), which
    # the caller asks for by passing ASYNC_COMMIT_FROM's set_config as `{async_commit}`.
    return (
        f"WITH token AS ({live_token_sql()}), "  # noqa: S608 - names from the models
        f"touched AS (UPDATE {identities} AS i SET last_polled_at = %s FROM token{{async_commit}} "
        "WHERE i.identity = %s AND i.user_id = token.user_id AND i.deleted_at IS NULL "
        "RETURNING i.id, i.trigger_slug, i.fields, i.feed_complete) "
        "SELECT token.id, token.user_id, touched.id, touched.trigger_slug, touched.fields, touched.feed_complete, "
        "feed.event_public_id, feed.type, feed.value, feed.occurred_at, feed.device_public_id, feed.name, "
        "feed.room, feed.kind "
        "FROM token LEFT JOIN touched ON true LEFT JOIN LATERAL ("
        "SELECT e.public_id AS event_public_id, e.type, e.value, f.occurred_at, f.event_id, "
        "d.public_id AS device_public_id, d.name, d.room, d.kind "
        f"FROM (SELECT event_id, occurred_at FROM {feed} WHERE identity_id = touched.id "
        "ORDER BY occurred_at DESC, event_id DESC LIMIT %s) AS f "
        f"JOIN {events} AS e ON e.id = f.event_id JOIN {devices} AS d ON d.id = e.device_id"
        ") AS feed ON true ORDER BY feed.occurred_at DESC, feed.event_id DESC"
    )


# Connections on which the poll's statement is prepared (a reconnect is a new connection object).
_prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()
POLL_STATEMENT, POLL_STATEMENT_ASYNC = "trigger_poll", "trigger_poll_async"


@cache
def poll_statements_prepare() -> list[str]:
    """PREPARE for the poll's statement, committing as usual and without waiting for the disk."""
    prepares = []
    for name, async_commit in ((POLL_STATEMENT, ""), (POLL_STATEMENT_ASYNC, f", {ASYNC_COMMIT_FROM}")):
        parts = _poll_sql().format(async_commit=async_commit).split("%s")
        numbered = "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]
        prepares.append(f"PREPARE {name} AS {numbered}")
    return prepares


def _poll_execute(cursor: Any, params: list[Any]) -> None:
    """Run the poll's statement as a prepared statement: planning it was 0.44 ms of the database's ~1 ms
    per poll (EXPLAIN ANALYZE at 1 M events); prepared once per connection, it is planned once.
    (A pooler in transaction mode in front of PostgreSQL would need this turned into a plain execute.)"""
    raw = connection.connection
    if raw not in _prepared_on:
        for prepare in poll_statements_prepare():
            cursor.execute(prepare)
        _prepared_on.add(raw)
    name = POLL_STATEMENT_ASYNC if async_commit_available() else POLL_STATEMENT
    cursor.execute(f"EXECUTE {name} (%s, %s, %s, %s, %s)", params)


def _poll_read_postgresql(*, checksum: str, identity: str, limit: int, now: datetime) -> PollRead | None:
    with connection.cursor() as cursor:
        _poll_execute(cursor, [checksum, now, now, identity, limit])
        rows = cursor.fetchall()
    if not rows:
        return None
    token_id, user_id, pk, slug, stored, complete = rows[0][:6]
    token = BearerToken(token_id, user_id)
    if pk is None:
        return PollRead(token, None, [])
    stored = json.loads(stored) if isinstance(stored, str) else stored
    current = TriggerIdentity(
        pk=pk, identity=identity, user_id=user_id, trigger_slug=slug, fields=stored, feed_complete=complete
    )
    current.last_polled_at = now
    return PollRead(token, current, [row[6:] for row in rows if row[6] is not None])


def _poll_read_orm(*, checksum: str, identity: str, limit: int, now: datetime) -> PollRead | None:
    token = live_token_orm(checksum, now)
    if token is None:
        return None
    found = (
        TriggerIdentity.objects.filter(identity=identity, user_id=token.user_id, deleted_at__isnull=True)
        .only("id", "identity", "user_id", "trigger_slug", "fields", "feed_complete")
        .first()
    )
    if found is None:
        return PollRead(token, None, [])
    TriggerIdentity.objects.filter(pk=found.pk).update(last_polled_at=now)
    found.last_polled_at = now
    return PollRead(token, found, list(feed_rows(found, limit)) if limit > 0 else [])


def trigger_poll_fast(*, checksum: str, identity: str, limit: int) -> PollRead | None:
    """A poll of a known identity in one round trip: authenticate the token (by its checksum), mark the
    identity polled, read its feed. None when the token is not a live `ifttt` token of an active user.

    One statement on PostgreSQL; the ORM, statement by statement, elsewhere (tests prove both answer
    the same). The caller checks the identity's trigger and fields, as with trigger_identity_touch.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _poll_read_postgresql(checksum=checksum, identity=identity, limit=max(limit, 0), now=now)
    return _poll_read_orm(checksum=checksum, identity=identity, limit=limit, now=now)
