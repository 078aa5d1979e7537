"""Database helpers shared by the hot paths (a trigger poll and its API-log row)."""

from __future__ import annotations

from django.db import connection

# Joined into a single-statement write, this turns off waiting for the WAL to reach the disk for that
# statement's own transaction (set_config(…, true) lasts until its commit). For bookkeeping only (the
# API log, "last polled"): a database crash can lose the last fraction of a second of such writes,
# never an event.
ASYNC_COMMIT_FROM = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"


def async_commit_available() -> bool:
    """True where ASYNC_COMMIT_FROM applies: PostgreSQL, with the statement its own transaction."""
    return connection.vendor == "postgresql" and connection.get_autocommit()
