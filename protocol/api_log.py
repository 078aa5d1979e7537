"""The API log's retention: full detail for API_LOG_DETAIL_HOURS (what IFTTT's own platform keeps),
failed calls for API_LOG_FAILURE_RETENTION_DAYS, and per day, user and endpoint summaries for
API_LOG_SUMMARY_RETENTION_DAYS.

A day is summed up whole, in the transaction that marks it done, before its successful calls are
deleted; a day that already has summaries is never summed again, so a re-run after a crash neither
loses nor doubles a call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from .models import ApiCall, ApiCallSummary

FAILED = Q(status_code__gte=400)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def api_calls_summarise_day(*, day: date) -> int:
    """Sum up `day`'s calls (all of them, failed too) into summaries, once; how many summaries were written."""
    start, end = _day_bounds(day)
    with transaction.atomic():
        if ApiCallSummary.objects.select_for_update().filter(day=day).exists():
            return 0
        groups = (
            ApiCall.objects.filter(created_at__gte=start, created_at__lt=end)
            .values("user_id", "endpoint", "slug")
            .annotate(
                calls=Count("id"),
                failures=Count("id", filter=FAILED),
                total_ms=Sum("duration_ms"),
                max_ms=Max("duration_ms"),
            )
            .order_by()
        )
        summaries = [
            ApiCallSummary(
                day=day,
                user_id=group["user_id"],
                endpoint=group["endpoint"],
                slug=group["slug"],
                calls=group["calls"],
                failures=group["failures"],
                total_ms=group["total_ms"] or 0.0,
                max_ms=group["max_ms"] or 0.0,
            )
            for group in groups
        ]
        ApiCallSummary.objects.bulk_create(summaries, batch_size=1000)
        return len(summaries)


def _delete_in_batches(rows: Any, batch: int) -> int:
    deleted = 0
    while True:
        ids = list(rows.order_by().values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += ApiCall.objects.filter(pk__in=ids).delete()[0]


def api_log_prune(batch: int = 5000, *, now: datetime | None = None) -> int:
    """Sum up and delete the detail that has aged out; how many API-log rows were deleted.

    Detail goes by whole UTC days, once the whole day is older than API_LOG_DETAIL_HOURS, so every
    summarised day is complete.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.API_LOG_DETAIL_HOURS)
    last_day = cutoff.astimezone(UTC).date() - timedelta(days=1)  # the newest day wholly past the cutoff
    deleted = 0
    oldest = ApiCall.objects.filter(~FAILED).order_by("created_at").values_list("created_at", flat=True).first()
    day = oldest.astimezone(UTC).date() if oldest is not None else last_day + timedelta(days=1)
    while day <= last_day:
        api_calls_summarise_day(day=day)
        start, end = _day_bounds(day)
        deleted += _delete_in_batches(ApiCall.objects.filter(~FAILED, created_at__gte=start, created_at__lt=end), batch)
        day += timedelta(days=1)
    failures_before = now - timedelta(days=settings.API_LOG_FAILURE_RETENTION_DAYS)
    deleted += _delete_in_batches(ApiCall.objects.filter(FAILED, created_at__lt=failures_before), batch)
    return deleted
