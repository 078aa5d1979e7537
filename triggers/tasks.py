"""Celery tasks for Realtime notifications, on their own queue (CELERY_REALTIME_QUEUE). Each takes ids
(or nothing) and claims its work atomically, so a task the broker delivers twice, or that two workers
run, does the work once."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from . import realtime

logger = logging.getLogger(__name__)


def _enqueue_retries(retry_in: dict[int, float]) -> None:
    for delivery_id, delay in retry_in.items():
        realtime_delivery_retry.apply_async((delivery_id,), countdown=delay, queue=realtime.realtime_queue())


@shared_task(name="triggers.tasks.realtime_dispatch")
def realtime_dispatch(min_age: float | None = None) -> int:
    """Notify IFTTT of the identities pending for a full coalescing window. Returns deliveries made."""
    realtime.realtime_dispatch_slot_clear()
    result = realtime.realtime_pending_dispatch(min_age=min_age)
    _enqueue_retries(result.retry_in)
    if result.more:
        # A backlog: carry on in a fresh task rather than holding this one past its time limit.
        realtime.realtime_dispatch_schedule(countdown=0.0, min_age=min_age)
    elif result.next_in is not None:
        # Marks too young for this run: their own run, one window after the oldest of them.
        realtime.realtime_dispatch_schedule(countdown=result.next_in, min_age=min_age)
    return len(result.sent)


@shared_task(name="triggers.tasks.realtime_delivery_retry")
def realtime_delivery_retry(delivery_id: int) -> None:
    """Attempt an open delivery again if its retry is due and no other worker holds it."""
    if not realtime.realtime_enabled():
        return
    delivery = realtime.realtime_delivery_acquire(delivery_id=delivery_id)
    if delivery is None:
        return  # delivered, dropped, not yet due, or another worker has it
    delay = realtime.realtime_delivery_send(delivery=delivery, recheck=True)
    if delay is not None:
        _enqueue_retries({delivery.pk: delay})
    elif not realtime.realtime_retry_waiting():
        # Through at last: what waited behind it goes now.
        realtime.realtime_dispatch_schedule(countdown=0.0)


@shared_task(name="triggers.tasks.realtime_sweep")
def realtime_sweep() -> None:
    """The safety net: send what was marked but never enqueued, and resume stalled deliveries."""
    if not realtime.realtime_enabled():
        return
    for delivery_id in realtime.realtime_deliveries_due():
        realtime_delivery_retry.apply_async((delivery_id,), queue=realtime.realtime_queue())
    # Nothing if a dispatch is queued already; marks younger than a window wait for it.
    realtime.realtime_dispatch_schedule(countdown=0.0)


@shared_task(name="triggers.tasks.trigger_identities_retire")
def trigger_identities_retire() -> int:
    retired = realtime.trigger_identities_retire()
    if retired:
        logger.info(
            "Retired %d trigger identities not polled for %d days.", retired, settings.TRIGGER_IDENTITY_RETIRE_DAYS
        )
    return retired
