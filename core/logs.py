"""Logs that say each thing once: a failure that repeats on every request (a broker outage) is logged
when it starts, summed up while it lasts, and logged again when it ends."""

from __future__ import annotations

import logging
import threading
import time


class Outage:
    """One kind of failure, logged as an outage rather than once per occurrence."""

    def __init__(self, logger: logging.Logger, what: str, *, every: float = 60.0) -> None:
        self.logger = logger
        self.what = what
        self.every = every
        self.lock = threading.Lock()
        self.failures = 0
        self.since = 0.0
        self.last_said = 0.0

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        with self.lock:
            self.failures += 1
            first = self.failures == 1
            due = not first and now - self.last_said >= self.every
            if first:
                self.since = self.last_said = now
            elif due:
                self.last_said = now
            count, lasted = self.failures, now - self.since
        if first:
            self.logger.error("%s: %s: %s", self.what, type(error).__name__, error, exc_info=error)
        elif due:
            self.logger.error("%s: still failing (%d times in %.0f s): %s", self.what, count, lasted, error)

    def succeeded(self) -> None:
        if not self.failures:  # the common case: no lock, nothing to say
            return
        with self.lock:
            count, lasted, self.failures = self.failures, time.monotonic() - self.since, 0
        if count:
            self.logger.warning("%s: working again after %d failure(s) over %.0f s", self.what, count, lasted)
