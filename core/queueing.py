"""Enqueueing background work from a request, without ever failing or stalling the request."""

from __future__ import annotations

import logging
from typing import Any, cast

from celery import Task
from django.db import transaction

from .logs import Outage

logger = logging.getLogger(__name__)
# During a broker outage every request fails to enqueue: say so when it starts, while it lasts and when
# it ends, not with a traceback per request.
_broker_outage = Outage(logger, "Could not enqueue background work (the periodic sweep will pick it up)")


def task_by_name(name: str) -> Task:
    """The registered task called `name`, importing the apps' task modules first if need be.

    Enqueueing by name lets a service queue work without importing its app's `tasks` module (which
    imports the services back).
    """
    from celery import current_app

    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return cast(Task, current_app.tasks[name])


def task_enqueue(
    task: Task | str, *, kwargs: dict[str, Any] | None = None, countdown: float | None = None, queue: str | None = None
) -> bool:
    """Send `task` (a task, or a task's name) now, to `queue` or where CELERY_TASK_ROUTES sends it;
    False if the broker could not take it.

    The work it would do must already be recorded as a row a periodic sweep finds, so a broker
    outage delays the work and loses nothing. kombu would otherwise keep reconnecting to a dead
    broker for seconds inside the request, so the connection is tried once, briefly.
    """
    if isinstance(task, str):
        task = task_by_name(task)
    app = task.app
    try:
        if app.conf.task_always_eager:
            task.apply(kwargs=kwargs or {})
            return True  # nothing was sent: the broker's state is unknown
        with cast(Any, app.producer_or_acquire()) as producer:
            producer.connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
            task.apply_async(
                kwargs=kwargs or {},
                countdown=countdown or 0.0,
                queue=cast(Any, queue),  # None: CELERY_TASK_ROUTES decides
                producer=producer,
                retry=False,
            )
        _broker_outage.succeeded()
        return True
    except Exception as exc:
        _broker_outage.failed(exc)
        return False


def task_enqueue_on_commit(
    task: Task | str, *, kwargs: dict[str, Any] | None = None, countdown: float | None = None
) -> None:
    """`task_enqueue` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: task_enqueue(task, kwargs=kwargs, countdown=countdown))
