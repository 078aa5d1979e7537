"""How the pages write times: one format (settings' FORMAT_MODULE_PATH), always with its time zone."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import formats, timezone

# Tokens issued "without expiry" are given an expiry a century away: past this, say they never expire.
NEVER_EXPIRES_AFTER = timedelta(days=365 * 50)


def when(at: datetime | None, *, empty: str = "never") -> str:
    """`at` as "28 Nov 2026, 01:38 UTC", or `empty` when there is no time."""
    if at is None:
        return empty
    return formats.date_format(timezone.localtime(at), "DATETIME_FORMAT")


def expiry(at: datetime | None, *, now: datetime | None = None) -> str:
    """When a token expires, in words: "never" rather than a date a hundred years away."""
    if at is None or at - (now or timezone.now()) > NEVER_EXPIRES_AFTER:
        return "never expires"
    return when(at)
