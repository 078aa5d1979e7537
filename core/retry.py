"""One retry policy for every outbound call (Realtime notifications, the Connect API).

Exponential backoff with full jitter, capped, and a server's `Retry-After` honoured (within the cap).
What is safe to retry is decided here too: a request that may already have taken effect (an action run
that timed out, or answered 5xx) is never re-sent blindly; callers that can make a retry safe (an
idempotency key, a read) say so with `idempotent=True`.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass
from datetime import UTC, datetime

# Statuses that say "try again later" without saying the request took effect.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Statuses that say the request was not processed at all, so even a non-idempotent request may be re-sent.
NOT_PROCESSED_STATUSES = frozenset({408, 425, 429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before attempt `n + 1`, and whether to make it at all."""

    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    max_attempts: int = 8

    def delay(self, *, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `attempts` failed attempts (1 for the first failure).

        Full jitter (a uniform draw up to the exponential ceiling) spreads a crowd of retries out; a
        server's `Retry-After` is a floor, never more than the cap.
        """
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        wait = random.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(self.cap_seconds, retry_after))
        return wait

    def may_retry(self, *, attempts: int) -> bool:
        return attempts < self.max_attempts


def should_retry(*, status: int | None, idempotent: bool, sent: bool = True) -> bool:
    """Whether an attempt that ended with `status` (None: no response) may be repeated.

    `sent=False` means the request never left (the connection was refused or could not be opened),
    which is always safe to retry. A timeout or a 5xx after sending may have taken effect: only an
    idempotent request is repeated then.
    """
    if status is None:
        return idempotent or not sent
    if status in NOT_PROCESSED_STATUSES:
        return True
    return idempotent and status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either a number of seconds or an HTTP date (RFC 9110 10.2.3)."""
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
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
