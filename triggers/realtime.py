"""Realtime notifications: telling IFTTT which trigger identities have new events.

The outbox is `TriggerIdentity.notify_pending_since`, set in the transaction that puts an event on
the identity's feed (`realtime_pending_mark`). After commit a task is enqueued to run one coalescing
window later; it claims the pending identities that have waited a full window (one transaction:
`SELECT … FOR UPDATE SKIP LOCKED`, clear the marks, create a `RealtimeDelivery`), then sends the
delivery. So:

- events for one identity within a window are one entry, and an identity is notified at most once
  per window (a new mark is always set after the previous claim, and waits a window itself);
- two workers, or a task the broker delivers twice, cannot claim one mark twice;
- if the broker or the worker is down, the marks stay and the periodic sweep claims them;
- a worker that dies mid-send leaves its delivery's lease to lapse, and the sweep resends it with
  the same X-Request-ID.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.queueing import task_enqueue

from .models import OPEN_DELIVERY_STATUSES, DeliveryStatus, RealtimeDelivery, TriggerFeedItem, TriggerIdentity

logger = logging.getLogger(__name__)

# IFTTT accepts at most this many entries per Realtime request.
MAX_IDENTITIES_PER_REQUEST = 1000
# One task run sends at most this many deliveries, then hands the rest to a fresh task, so a
# backlog never holds a worker past its time limit.
MAX_DELIVERIES_PER_RUN = 20
# A retry never waits longer than this, whatever the backoff or Retry-After says.
MAX_RETRY_DELAY_SECONDS = 600.0
# Slack for a task that the broker hands over a few milliseconds before its countdown ends.
CLOCK_SLACK = timedelta(milliseconds=20)


def realtime_enabled() -> bool:
    """An empty IFTTT_REALTIME_URL turns notifications off (tests, offline development)."""
    return bool(settings.IFTTT_REALTIME_URL)


def _window() -> timedelta:
    return timedelta(seconds=settings.REALTIME_COALESCE_SECONDS)


def _lease() -> timedelta:
    # A lease shorter than the HTTP timeout would let the sweep resend a request that is merely slow.
    return timedelta(seconds=max(settings.REALTIME_LEASE_SECONDS, settings.REALTIME_TIMEOUT_SECONDS + 1))


# --- The outbox ------------------------------------------------------------------------------------


def realtime_pending_mark(*, identity_ids: Sequence[int]) -> None:
    """Mark identities as waiting for a notification; enqueue the notification after commit.

    Called inside the transaction that writes their feed items, so a mark exists exactly when the
    events do. Two statements whatever the number of identities.
    """
    if not identity_ids or not realtime_enabled():
        return
    now = timezone.now()
    with transaction.atomic():
        # Lock in id order so two recording transactions touching the same identities cannot deadlock.
        locked = list(
            TriggerIdentity.objects.select_for_update()
            .filter(id__in=identity_ids)
            .order_by("id")
            .values_list("id", flat=True)
        )
        # Unconditional (COALESCE) rather than "WHERE pending IS NULL": if a claim holds the row, this
        # waits for it and then re-marks, instead of skipping a mark the claim has already read.
        TriggerIdentity.objects.filter(id__in=locked).update(
            notify_pending_since=Coalesce(F("notify_pending_since"), Value(now))
        )
    transaction.on_commit(_dispatch_after_commit)


def _dispatch_after_commit() -> None:
    # An enqueue failure (broker down) must not fail or slow the request that recorded the events:
    # the marks are committed, and the sweep sends them once the broker is back.
    from .tasks import realtime_dispatch

    if realtime_dispatch.app.conf.task_always_eager:
        # Eager runs have no countdown: send what is pending now.
        task_enqueue(realtime_dispatch, kwargs={"min_age": 0.0})
    else:
        task_enqueue(realtime_dispatch, countdown=settings.REALTIME_COALESCE_SECONDS)


# --- Claiming --------------------------------------------------------------------------------------


def realtime_delivery_claim(*, min_age: float | None = None) -> RealtimeDelivery | None:
    """Claim up to 1000 identities pending for at least `min_age` seconds into a new delivery.

    `min_age` defaults to the coalescing window. Rows another transaction holds are skipped, not
    waited for: a claim holds them, or a recording transaction that enqueues its own task on commit.
    """
    age = _window() if min_age is None else timedelta(seconds=min_age)
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            TriggerIdentity.objects.select_for_update(skip_locked=True)
            .filter(notify_pending_since__isnull=False, deleted_at__isnull=True)
            .filter(notify_pending_since__lte=now - age + CLOCK_SLACK)
            .order_by("notify_pending_since")
            .values_list("id", "identity", "notify_pending_since")[:MAX_IDENTITIES_PER_REQUEST]
        )
        if not rows:
            return None
        TriggerIdentity.objects.filter(id__in=[pk for pk, _, _ in rows]).update(
            notify_pending_since=None, last_notified_at=now
        )
        delivery = RealtimeDelivery.objects.create(
            identities=[identity for _, identity, _ in rows],
            identity_count=len(rows),
            attempts=1,
            next_attempt_at=now + _lease(),
            pending_since=min(since for _, _, since in rows if since is not None),
        )
        link = RealtimeDelivery.trigger_identities.through
        link.objects.bulk_create([link(realtimedelivery_id=delivery.pk, triggeridentity_id=pk) for pk, _, _ in rows])
        return delivery


def realtime_delivery_acquire(*, delivery_id: int) -> RealtimeDelivery | None:
    """Take the lease on an open delivery whose retry is due or whose last worker's lease lapsed.

    One conditional UPDATE: of two workers (or a redelivered task), exactly one gets it.
    """
    now = timezone.now()
    taken = RealtimeDelivery.objects.filter(
        pk=delivery_id, status__in=OPEN_DELIVERY_STATUSES, next_attempt_at__lte=now + CLOCK_SLACK
    ).update(
        status=DeliveryStatus.SENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=now + _lease(),
    )
    if not taken:
        return None
    return RealtimeDelivery.objects.get(pk=delivery_id)


# --- Sending ---------------------------------------------------------------------------------------

_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive connection per worker process (and thread), created after the fork.
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        _local.session = session
    return session


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry: bool
    status: int | None
    error: str
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _post(request_id: str, identities: Sequence[str]) -> Outcome:
    headers = {
        "IFTTT-Service-Key": settings.IFTTT_SERVICE_KEY,
        "X-Request-ID": request_id,
        "Accept": "application/json",
        "Accept-Charset": "utf-8",
        "Content-Type": "application/json",
    }
    body = {"data": [{"trigger_identity": identity} for identity in identities]}
    try:
        response = _session().post(
            settings.IFTTT_REALTIME_URL, json=body, headers=headers, timeout=settings.REALTIME_TIMEOUT_SECONDS
        )
    except requests.Timeout:
        return Outcome(False, True, None, f"No answer within {settings.REALTIME_TIMEOUT_SECONDS:g} s.")
    except requests.RequestException as exc:
        return Outcome(False, True, None, f"Could not reach the Realtime API: {exc}")
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True, False, status, "")
    detail = response.text[:500]
    if status == 429 or status >= 500:
        return Outcome(False, True, status, detail, _retry_after(response.headers.get("Retry-After")))
    # Any other 4xx will not get better by resending the same request.
    return Outcome(False, False, status, detail)


def _backoff(attempts: int) -> float:
    """Exponential from REALTIME_BACKOFF_SECONDS, with "equal jitter" so retries spread out."""
    ceiling = min(MAX_RETRY_DELAY_SECONDS, settings.REALTIME_BACKOFF_SECONDS * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def realtime_delivery_send(*, delivery: RealtimeDelivery, recheck: bool) -> float | None:
    """Make one attempt at a delivery this worker holds the lease on; record what happened.

    With `recheck`, identities deleted since the claim are left out (a deleted identity is never
    notified). Returns the delay before the next attempt, or None when the delivery is finished.
    """
    identities: Sequence[str] = delivery.identities
    if recheck:
        live = set(
            TriggerIdentity.objects.filter(identity__in=identities, deleted_at__isnull=True).values_list(
                "identity", flat=True
            )
        )
        identities = [identity for identity in identities if identity in live]
    now = timezone.now()
    if not identities:
        RealtimeDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.DROPPED,
            next_attempt_at=None,
            completed_at=now,
            error="Every identity in it was deleted before it could be sent.",
        )
        return None
    outcome = _post(delivery.request_id, identities)
    now = timezone.now()
    update: dict[str, object] = {"response_status": outcome.status, "error": outcome.error}
    delay: float | None = None
    if outcome.delivered:
        update.update(
            status=DeliveryStatus.DELIVERED,
            next_attempt_at=None,
            completed_at=now,
            latency_ms=(now - delivery.pending_since).total_seconds() * 1000,
        )
    elif outcome.retry and delivery.attempts < settings.REALTIME_MAX_ATTEMPTS:
        delay = min(MAX_RETRY_DELAY_SECONDS, outcome.retry_after or _backoff(delivery.attempts))
        update.update(status=DeliveryStatus.RETRYING, next_attempt_at=now + timedelta(seconds=delay))
    else:
        status = DeliveryStatus.FAILED if outcome.retry else DeliveryStatus.DROPPED
        update.update(status=status, next_attempt_at=None, completed_at=now)
        logger.warning(
            "Realtime delivery %s %s after %d attempts: %s %s",
            delivery.request_id,
            status.label.lower(),
            delivery.attempts,
            outcome.status,
            outcome.error,
        )
    # Only while we still hold the lease: a worker that outlived it must not overwrite the resend's result.
    RealtimeDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(**update)
    return delay


# --- What the tasks run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchResult:
    sent: list[int]
    retry_in: dict[int, float]
    more: bool


def realtime_pending_dispatch(*, min_age: float | None = None) -> DispatchResult:
    """Claim and send pending identities, up to MAX_DELIVERIES_PER_RUN requests of 1000."""
    result = DispatchResult(sent=[], retry_in={}, more=False)
    if not realtime_enabled():
        return result
    for _ in range(MAX_DELIVERIES_PER_RUN):
        delivery = realtime_delivery_claim(min_age=min_age)
        if delivery is None:
            return result
        result.sent.append(delivery.pk)
        delay = realtime_delivery_send(delivery=delivery, recheck=False)
        if delay is not None:
            result.retry_in[delivery.pk] = delay
    return DispatchResult(sent=result.sent, retry_in=result.retry_in, more=True)


def realtime_deliveries_due(*, limit: int = 200) -> list[int]:
    """Open deliveries whose retry time came or whose lease lapsed (their worker died)."""
    return list(
        RealtimeDelivery.objects.filter(status__in=OPEN_DELIVERY_STATUSES, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


# --- Retirement ------------------------------------------------------------------------------------


def trigger_identities_retire(*, now: datetime | None = None, chunk: int = 500) -> int:
    """Tombstone identities IFTTT has not polled for TRIGGER_IDENTITY_RETIRE_DAYS; drop their feeds.

    A retired identity is never notified; if IFTTT polls it again it is revived with a fresh feed.
    Works in chunks so no transaction holds many rows.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.TRIGGER_IDENTITY_RETIRE_DAYS)
    stale = TriggerIdentity.objects.annotate(seen=Coalesce("last_polled_at", "first_seen_at"))
    retired = 0
    while True:
        with transaction.atomic():
            ids = list(
                stale.select_for_update(skip_locked=True)
                .filter(deleted_at__isnull=True, seen__lt=cutoff)
                .values_list("id", flat=True)[:chunk]
            )
            if not ids:
                return retired
            TriggerIdentity.objects.filter(id__in=ids).update(deleted_at=now, notify_pending_since=None)
            TriggerFeedItem.objects.filter(identity_id__in=ids).delete()
        retired += len(ids)
