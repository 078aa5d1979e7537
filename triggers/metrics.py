"""Scrape-time gauges of the Realtime backlog: read from the partial index the sweep itself uses."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import Metric

from core.metrics import gauge

from .models import TriggerIdentity


def realtime_backlog() -> Iterable[Metric]:
    pending = TriggerIdentity.objects.filter(notify_pending_since__isnull=False, deleted_at__isnull=True).aggregate(
        n=Count("id"), oldest=Min("notify_pending_since")
    )
    oldest = pending["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
    yield gauge("realtime_identities_pending", "Trigger identities waiting for a Realtime notification.", pending["n"])
    yield gauge("realtime_oldest_pending_seconds", "Age of the oldest identity waiting to be notified.", age)
