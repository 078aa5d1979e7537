"""Realtime notifications: telling IFTTT which trigger identities have new events.

The outbox is `TriggerIdentity.notify_pending_since`, set in the transaction that puts an event on
the identity's feed (`realtime_pending_mark`). After commit a dispatch task is scheduled to run one
coalescing window later, unless one is already queued (`RealtimeDispatchSlot`: a flood of events is
one task per window, on a queue of its own). The task claims the pending identities that have waited
a full window (one transaction: `SELECT … FOR UPDATE SKIP LOCKED`, clear the marks, create a
`RealtimeDelivery` and its first `RealtimeAttempt`), sends the delivery, and schedules itself again
for marks still too young. So:

- events for one identity within a window are one entry, and an identity is notified at most once
  per window (a new mark is always set after the previous claim, and waits a window itself);
- two workers, or a task the broker delivers twice, cannot claim one mark twice;
- if the broker or the worker is down, the marks stay and the periodic sweep claims them;
- a worker that dies mid-send leaves its delivery's lease to lapse, and the sweep resends it with
  the same X-Request-ID (counted in `resends`: IFTTT may have seen it twice);
- a server error or an unreachable IFTTT is retried with the one retry policy (capped backoff) for as
  long as it lasts. While a delivery waits to retry no new delivery is claimed: new events wait as
  marks on their identities, coalesced, and are sent once the retry gets through. An outage of any
  length costs one request per backoff step and ends with every pending identity notified.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, F, Min, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import metrics
from core.observability import request_id_var
from core.queueing import task_by_name, task_enqueue
from core.retry import RetryPolicy, parse_retry_after, should_retry

from .models import (
    OPEN_DELIVERY_STATUSES,
    AttemptOutcome,
    DeliveryStatus,
    RealtimeAttempt,
    RealtimeDelivery,
    RealtimeDispatchSlot,
    TriggerFeedItem,
    TriggerIdentity,
)

logger = logging.getLogger(__name__)

# IFTTT accepts at most this many entries per Realtime request.
MAX_IDENTITIES_PER_REQUEST = 1000
# One task run sends at most this many deliveries, then hands the rest to a fresh task, so a
# backlog never holds a worker past its time limit.
MAX_DELIVERIES_PER_RUN = 20
# Slack for a task that the broker hands over a few milliseconds before its countdown ends.
CLOCK_SLACK = timedelta(milliseconds=20)
# The one dispatch slot's row.
SLOT = 1


def realtime_enabled() -> bool:
    """An empty IFTTT_REALTIME_URL turns notifications off (tests, offline development)."""
    return bool(settings.IFTTT_REALTIME_URL)


def realtime_queue() -> str:
    return str(settings.CELERY_REALTIME_QUEUE)


def retry_policy() -> RetryPolicy:
    """The project's retry policy with Realtime's base and cap. Its attempt limit is not used:
    a notification is retried until it gets through (see the module docstring)."""
    return RetryPolicy(base_seconds=settings.REALTIME_BACKOFF_SECONDS, cap_seconds=settings.REALTIME_RETRY_CAP_SECONDS)


def _window() -> timedelta:
    return timedelta(seconds=settings.REALTIME_COALESCE_SECONDS)


def _lease() -> timedelta:
    # A lease shorter than the HTTP timeout would let the sweep resend a request that is merely slow.
    return timedelta(seconds=max(settings.REALTIME_LEASE_SECONDS, settings.REALTIME_TIMEOUT_SECONDS + 1))


# --- The outbox ------------------------------------------------------------------------------------


def realtime_pending_mark(*, identity_ids: Sequence[int]) -> None:
    """Mark identities as waiting for a notification; schedule the notification after commit.

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
            notify_pending_since=Coalesce(F("notify_pending_since"), Value(now)),
            notify_request_id=Case(
                When(notify_pending_since__isnull=True, then=Value(request_id_var.get())),
                default=F("notify_request_id"),
            ),
        )
    transaction.on_commit(_dispatch_after_commit)


def _dispatch_after_commit() -> None:
    # An enqueue failure (broker down) must not fail or slow the request that recorded the events:
    # the marks are committed, and the sweep sends them once the broker is back.
    realtime_dispatch_schedule(countdown=settings.REALTIME_COALESCE_SECONDS)


def _slot_grace() -> timedelta:
    # A queued dispatch that has not started this long after it was due was lost (a broker that
    # restarted empty) or never sent (broker down): the next event or sweep may queue another.
    return timedelta(seconds=max(2 * settings.REALTIME_SWEEP_SECONDS, 1.0))


DISPATCH_TASK = "triggers.tasks.realtime_dispatch"


def realtime_dispatch_schedule(*, countdown: float, min_age: float | None = None) -> bool:
    """Queue one dispatch task `countdown` seconds from now unless one is queued already.

    True if this call queued it. One conditional UPDATE of the slot row decides, so however many
    events arrive, at most one dispatch task waits in the queue at a time.
    """
    # By name: triggers.tasks imports this module.
    realtime_dispatch = task_by_name(DISPATCH_TASK)
    if realtime_dispatch.app.conf.task_always_eager:
        # Eager runs have no countdown (nor a queue to flood): send what is pending now.
        return task_enqueue(realtime_dispatch, kwargs={"min_age": 0.0})
    now = timezone.now()
    free = Q(due_at__isnull=True) | Q(due_at__lt=now - _slot_grace())
    taken = RealtimeDispatchSlot.objects.filter(pk=SLOT).filter(free).update(due_at=now + timedelta(seconds=countdown))
    if not taken:
        if RealtimeDispatchSlot.objects.filter(pk=SLOT).exists():
            return False
        RealtimeDispatchSlot.objects.get_or_create(pk=SLOT)
        taken = (
            RealtimeDispatchSlot.objects.filter(pk=SLOT).filter(free).update(due_at=now + timedelta(seconds=countdown))
        )
        if not taken:
            return False
    kwargs = {} if min_age is None else {"min_age": min_age}
    # On a broker failure the slot stays taken: the sweep queues the dispatch once the grace is over,
    # instead of every event request trying the dead broker again.
    return task_enqueue(realtime_dispatch, kwargs=kwargs, countdown=countdown, queue=realtime_queue())


def realtime_dispatch_slot_clear() -> None:
    """A dispatch task has started: events from now on need a task of their own."""
    RealtimeDispatchSlot.objects.filter(pk=SLOT).update(due_at=None)


# --- Claiming --------------------------------------------------------------------------------------


def realtime_retry_waiting() -> bool:
    """Whether a delivery waits to retry: IFTTT is failing, so nothing new is claimed until it gets through."""
    # Open and failed at least once: waiting to retry, or being retried right now.
    return RealtimeDelivery.objects.filter(status__in=OPEN_DELIVERY_STATUSES).exclude(error="").exists()


def realtime_delivery_claim(*, min_age: float | None = None) -> RealtimeDelivery | None:
    """Claim up to 1000 identities pending for at least `min_age` seconds into a new delivery.

    `min_age` defaults to the coalescing window. Rows another transaction holds are skipped, not
    waited for: a claim holds them, or a recording transaction that schedules its own task on commit.
    Nothing is claimed while a delivery waits to retry.
    """
    age = _window() if min_age is None else timedelta(seconds=min_age)
    now = timezone.now()
    with transaction.atomic():
        if realtime_retry_waiting():
            return None
        rows = list(
            TriggerIdentity.objects.select_for_update(skip_locked=True)
            .filter(notify_pending_since__isnull=False, deleted_at__isnull=True)
            .filter(notify_pending_since__lte=now - age + CLOCK_SLACK)
            .order_by("notify_pending_since")
            .values_list("id", "identity", "notify_pending_since", "notify_request_id")[:MAX_IDENTITIES_PER_REQUEST]
        )
        if not rows:
            return None
        TriggerIdentity.objects.filter(id__in=[row[0] for row in rows]).update(
            notify_pending_since=None, notify_request_id="", last_notified_at=now
        )
        # rows are oldest first: the first mark's request is the one that started this notification.
        delivery = RealtimeDelivery.objects.create(
            identities=[row[1] for row in rows],
            identity_count=len(rows),
            attempts=1,
            next_attempt_at=now + _lease(),
            pending_since=rows[0][2] or now,
            origin_request_id=rows[0][3],
        )
        link = RealtimeDelivery.trigger_identities.through
        link.objects.bulk_create([link(realtimedelivery_id=delivery.pk, triggeridentity_id=row[0]) for row in rows])
        RealtimeAttempt.objects.create(delivery=delivery, number=1, started_at=now, identity_count=len(rows))
        return delivery


def realtime_delivery_acquire(*, delivery_id: int) -> RealtimeDelivery | None:
    """Take the lease on an open delivery whose retry is due or whose last worker's lease lapsed.

    One conditional UPDATE: of two workers (or a redelivered task), exactly one gets it. An earlier
    attempt still marked as sending never had its answer recorded: this attempt is a resend.
    """
    now = timezone.now()
    with transaction.atomic():
        taken = RealtimeDelivery.objects.filter(
            pk=delivery_id, status__in=OPEN_DELIVERY_STATUSES, next_attempt_at__lte=now + CLOCK_SLACK
        ).update(
            status=DeliveryStatus.SENDING,
            attempts=F("attempts") + 1,
            next_attempt_at=now + _lease(),
        )
        if not taken:
            return None
        unanswered = RealtimeAttempt.objects.filter(delivery_id=delivery_id, outcome=AttemptOutcome.SENDING).update(
            outcome=AttemptOutcome.UNANSWERED,
            error="Its worker stopped (or lost the database) before recording IFTTT's answer.",
        )
        if unanswered:
            RealtimeDelivery.objects.filter(pk=delivery_id).update(resends=F("resends") + 1)
        delivery = RealtimeDelivery.objects.get(pk=delivery_id)
        RealtimeAttempt.objects.create(
            delivery=delivery, number=delivery.attempts, started_at=now, identity_count=delivery.identity_count
        )
    if unanswered:
        metrics.realtime_attempts.labels(AttemptOutcome.UNANSWERED.value).inc(unanswered)
        with _request_context(delivery.origin_request_id):
            logger.warning(
                "Realtime delivery %s: the answer to attempt %d was never recorded; sending it again "
                "with the same X-Request-ID (IFTTT may see it twice).",
                delivery.request_id,
                delivery.attempts - 1,
            )
    return delivery


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


def _post(request_id: str, identities: Sequence[str]) -> Outcome:
    headers = {
        "IFTTT-Service-Key": settings.IFTTT_SERVICE_KEY,
        "X-Request-ID": request_id,
        "Accept": "application/json",
        "Accept-Charset": "utf-8",
        "Content-Type": "application/json",
    }
    body = {"data": [{"trigger_identity": identity} for identity in identities]}
    # A notification is idempotent (IFTTT re-polls; the same X-Request-ID marks a repeat), so any
    # failure the retry policy calls retryable is retried, whether or not the request left.
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
    detail = response.text[:500] or f"HTTP {status}"
    if should_retry(status=status, idempotent=True):
        return Outcome(False, True, status, detail, parse_retry_after(response.headers.get("Retry-After")))
    # Any other 4xx will not get better by resending the same request.
    return Outcome(False, False, status, detail)


@contextlib.contextmanager
def _request_context(request_id: str) -> Any:
    """Log lines about a delivery carry the request id of the event (or poll) that caused it."""
    token = request_id_var.set(request_id or request_id_var.get())
    try:
        yield
    finally:
        request_id_var.reset(token)


def _with_database(write: Callable[[], int]) -> int:
    """Run a bookkeeping write, riding out a database restart of up to half a lease.

    IFTTT has already answered: losing that answer would mean sending the notification again.
    """
    if connection.in_atomic_block:
        return write()
    policy = RetryPolicy(base_seconds=0.2, cap_seconds=2.0)
    deadline = time.monotonic() + _lease().total_seconds() / 2
    failures = 0
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError):
            failures += 1
            if time.monotonic() >= deadline:
                raise
            with contextlib.suppress(Exception):
                connection.close()  # a broken connection is replaced on the next query
            time.sleep(policy.delay(attempts=failures))


def realtime_delivery_send(*, delivery: RealtimeDelivery, recheck: bool) -> float | None:
    """Make one attempt at a delivery this worker holds the lease on; record what happened.

    With `recheck`, identities deleted since the claim are left out (a deleted identity is never
    notified). Returns the delay before the next attempt, or None when the delivery is finished.
    """
    with _request_context(delivery.origin_request_id):
        return _send(delivery, recheck=recheck)


def _send(delivery: RealtimeDelivery, *, recheck: bool) -> float | None:
    identities: Sequence[str] = delivery.identities
    if recheck:
        live = set(
            TriggerIdentity.objects.filter(identity__in=identities, deleted_at__isnull=True).values_list(
                "identity", flat=True
            )
        )
        identities = [identity for identity in identities if identity in live]
    attempt = RealtimeAttempt.objects.filter(delivery_id=delivery.pk, number=delivery.attempts)
    now = timezone.now()
    if not identities:
        reason = "Every identity in it was deleted before it could be sent."
        RealtimeDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.DROPPED, next_attempt_at=None, completed_at=now, error=reason
        )
        attempt.delete()  # nothing was sent
        metrics.realtime_deliveries.labels("dropped").inc()
        return None
    started = time.monotonic()
    outcome = _post(delivery.request_id, identities)
    duration_ms = (time.monotonic() - started) * 1000
    now = timezone.now()
    update: dict[str, object] = {"response_status": outcome.status, "error": outcome.error}
    delay: float | None = None
    latency: float | None = None
    if outcome.delivered:
        result = AttemptOutcome.DELIVERED
        latency = (now - delivery.pending_since).total_seconds()
        update.update(
            status=DeliveryStatus.DELIVERED, next_attempt_at=None, completed_at=now, latency_ms=latency * 1000
        )
    elif outcome.retry:
        result = AttemptOutcome.RETRY
        delay = retry_policy().delay(attempts=delivery.attempts, retry_after=outcome.retry_after)
        update.update(status=DeliveryStatus.RETRYING, next_attempt_at=now + timedelta(seconds=delay))
        logger.warning(
            "Realtime delivery %s attempt %d failed (%s %s); retrying in %.1f s.",
            delivery.request_id,
            delivery.attempts,
            outcome.status or "no answer",
            outcome.error[:200],
            delay,
        )
    else:
        result = AttemptOutcome.REFUSED
        update.update(status=DeliveryStatus.DROPPED, next_attempt_at=None, completed_at=now)
        logger.warning(
            "Realtime delivery %s refused by IFTTT on attempt %d: %s %s",
            delivery.request_id,
            delivery.attempts,
            outcome.status,
            outcome.error[:200],
        )

    def record() -> int:
        with transaction.atomic():
            # Only while we still hold the lease: a worker that outlived it must not overwrite the resend's result.
            written = RealtimeDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(**update)
            attempt.filter(outcome=AttemptOutcome.SENDING).update(
                outcome=result,
                duration_ms=duration_ms,
                response_status=outcome.status,
                error=outcome.error,
                identity_count=len(identities),
            )
            return written

    written = _with_database(record)
    metrics.realtime_attempts.labels(result.value).inc()
    if written and result != AttemptOutcome.RETRY:
        metrics.realtime_deliveries.labels("delivered" if outcome.delivered else "refused").inc()
    if written and latency is not None:
        metrics.realtime_latency.observe(latency)
    return delay


# --- What the tasks run ----------------------------------------------------------------------------


@dataclass
class DispatchResult:
    sent: list[int] = field(default_factory=list)
    retry_in: dict[int, float] = field(default_factory=dict)
    more: bool = False
    # Seconds until the youngest marks left behind are a window old (None: nothing left, or held back).
    next_in: float | None = None


def realtime_pending_dispatch(*, min_age: float | None = None) -> DispatchResult:
    """Claim and send pending identities, up to MAX_DELIVERIES_PER_RUN requests of 1000."""
    result = DispatchResult()
    if not realtime_enabled():
        return result
    for _ in range(MAX_DELIVERIES_PER_RUN):
        delivery = realtime_delivery_claim(min_age=min_age)
        if delivery is None:
            result.next_in = _next_due()
            return result
        result.sent.append(delivery.pk)
        delay = realtime_delivery_send(delivery=delivery, recheck=False)
        if delay is not None:
            result.retry_in[delivery.pk] = delay
    result.more = True
    return result


def _next_due() -> float | None:
    if realtime_retry_waiting():
        return None  # the retry's success dispatches what waits
    oldest = TriggerIdentity.objects.filter(notify_pending_since__isnull=False, deleted_at__isnull=True).aggregate(
        oldest=Min("notify_pending_since")
    )["oldest"]
    if oldest is None:
        return None
    return max(0.0, (oldest + _window() - timezone.now()).total_seconds())


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
