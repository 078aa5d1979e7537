"""The embedded broker: a kombu transport on one SQLite file (`sqlite://localhost//abs/broker.sqlite3`).

Used when CELERY_BROKER_URL is unset, so `make run` needs nothing installed beside Python. Why not
kombu's own filesystem transport: a consumer can read a message file that is created but not yet
written, and the worker dies on it (kombu issue #1551). Here every message is one row, written in
one transaction, so a reader sees all of it or none.

Nothing is done twice and nothing is lost when a worker dies:
- a consumer *claims* a row (marks it with its own id) in one UPDATE, so two workers never take the
  same message; the row is deleted only on ack;
- each consuming channel records that it is alive every few seconds; rows claimed by a consumer that
  has not done so for `lease_seconds` (it was killed) go back to the queue. Messages a live worker
  holds for later (countdown tasks) stay claimed however long they wait;
- a requeue (reject, or the worker's orderly shutdown) releases the claim instead of copying the row.

WAL mode lets the web processes publish while the worker polls; every write is a single statement
(it takes the write lock before it reads), and waits up to `busy_timeout` seconds for the lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import urlsplit

from kombu.transport import TRANSPORT_ALIASES, virtual  # type: ignore[attr-defined]  # (the stubs lack them)

SCHEME = "sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    tag TEXT NOT NULL,
    payload TEXT NOT NULL,
    owner TEXT,
    claimed_at REAL
);
CREATE INDEX IF NOT EXISTS message_ready ON message (queue, owner, id);
CREATE INDEX IF NOT EXISTS message_tag ON message (tag);
CREATE TABLE IF NOT EXISTS consumer (id TEXT PRIMARY KEY, seen REAL NOT NULL);
"""
READY = "SELECT 1 FROM message WHERE queue = ? AND owner IS NULL LIMIT 1"
# One statement each, so two consumers can never take the same row (TAKE: consumers without acks).
CLAIM = """UPDATE message SET owner = ?, claimed_at = ?
WHERE id = (SELECT id FROM message WHERE queue = ? AND owner IS NULL ORDER BY id LIMIT 1) RETURNING payload"""
TAKE = """DELETE FROM message
WHERE id = (SELECT id FROM message WHERE queue = ? AND owner IS NULL ORDER BY id LIMIT 1) RETURNING payload"""


def register() -> None:
    """Make `sqlite://` broker URLs resolve to this transport (call before creating a connection)."""
    TRANSPORT_ALIASES.setdefault(SCHEME, "core.broker:Transport")


def broker_url(path: Path) -> str:
    return f"{SCHEME}://localhost/{path.resolve()}"


def database_path(url: str) -> Path:
    """`sqlite://localhost//abs/file.sqlite3` (or `sqlite:////abs/file.sqlite3`) -> the file."""
    return Path(urlsplit(url).path[1:])


class Channel(virtual.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.connection.client.transport_options
        self.path = str(self._path())
        self.lease_seconds = float(options.get("lease_seconds", 30.0))
        self.beat_seconds = min(5.0, self.lease_seconds / 3)
        self.busy_timeout = float(options.get("busy_timeout", 30.0))
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        self._lock = threading.RLock()
        self._last_beat = 0.0
        self._no_ack_queues: set[str] = set()
        self._db()  # opening the file is the connection check

    def _path(self) -> Path:
        client = self.connection.client
        path = client.transport_options.get("path") or client.virtual_host or ""
        if not path or path == "/":
            raise ValueError("The sqlite broker needs a file: sqlite:////absolute/path/broker.sqlite3")
        return Path(path)

    # --- the database ---------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        # A forked child (a pool process) must not share its parent's SQLite handle.
        if self._conn is None or self._conn_pid != os.getpid():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._conn, self._conn_pid = conn, os.getpid()
        return self._conn

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db().execute(sql, params)

    # --- kombu's virtual channel -------------------------------------------------------------------
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        tag = message["properties"]["delivery_tag"]
        self._execute("INSERT INTO message (queue, tag, payload) VALUES (?, ?, ?)", (queue, tag, json.dumps(message)))

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        self._heartbeat()
        with self._lock:
            db = self._db()
            # A read first: an empty queue (the usual case) takes no write lock.
            if db.execute(READY, (queue,)).fetchone() is None:
                raise Empty()
            if queue in self._no_ack_queues:
                row = db.execute(TAKE, (queue,)).fetchone()
            else:
                row = db.execute(CLAIM, (self.owner, time.time(), queue)).fetchone()
        if row is None:
            raise Empty()
        payload: dict[str, Any] = json.loads(row[0])
        return payload

    def _size(self, queue: str) -> int:
        row = self._execute("SELECT COUNT(*) FROM message WHERE queue = ? AND owner IS NULL", (queue,)).fetchone()
        return int(row[0])

    def _purge(self, queue: str) -> int:
        return self._execute("DELETE FROM message WHERE queue = ? AND owner IS NULL", (queue,)).rowcount

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        self._execute("DELETE FROM message WHERE queue = ?", (queue,))

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """Queues exist implicitly: a row names its queue."""

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return True

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        try:
            return super().basic_get(queue, no_ack=no_ack, **kwargs)
        finally:
            if no_ack:
                self._no_ack_queues.discard(queue)

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        self._execute("DELETE FROM message WHERE tag = ? AND owner = ?", (delivery_tag, self.owner))
        super().basic_ack(delivery_tag, multiple=multiple)

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if not requeue:
            self._execute("DELETE FROM message WHERE tag = ? AND owner = ?", (delivery_tag, self.owner))
        super().basic_reject(delivery_tag, requeue=requeue)

    def _restore(self, message: Any) -> None:
        """Give a claimed message back to its queue (requeue, shutdown) rather than copy it.

        If the claim is no longer ours (this consumer went silent past its lease and the message went
        back to the queue), there is nothing to give back: a copy would run it twice.
        """
        self._execute(
            "UPDATE message SET owner = NULL, claimed_at = NULL WHERE tag = ? AND owner = ?",
            (message.delivery_tag, self.owner),
        )

    # --- leases -------------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        """Say this consumer is alive, and give back what dead consumers had claimed."""
        now = time.time()
        if now - self._last_beat < self.beat_seconds:
            return
        self._last_beat = now
        with self._lock:
            db = self._db()
            db.execute("INSERT OR REPLACE INTO consumer (id, seen) VALUES (?, ?)", (self.owner, now))
            db.execute(
                "UPDATE message SET owner = NULL, claimed_at = NULL WHERE owner IS NOT NULL AND claimed_at < ? "
                "AND owner NOT IN (SELECT id FROM consumer WHERE seen >= ?)",
                (now - self.lease_seconds, now - self.lease_seconds),
            )
            db.execute("DELETE FROM consumer WHERE seen < ?", (now - 24 * 3600,))

    def drain_events(self, timeout: float | None = None, callback: Any = None) -> Any:
        # Called on every turn of the worker's loop, also while its prefetch is full (tasks held for a
        # countdown): the heartbeat must not stop then, or another worker would take those messages.
        if self._consumers:
            self._heartbeat()
        return super().drain_events(timeout=timeout, callback=callback)

    def close(self) -> None:
        super().close()  # gives back unacked messages first
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.execute("DELETE FROM consumer WHERE id = ?", (self.owner,))
                self._conn.close()
            self._conn = None


class Transport(virtual.Transport):
    Channel = Channel
    # Poll often enough that a task enqueued by a request starts within a fraction of a second.
    polling_interval = 0.1
    driver_type = driver_name = "sqlite"
    implements = virtual.Transport.implements.extend(asynchronous=False, exchange_type=frozenset(["direct", "topic"]))

    def driver_version(self) -> str:
        return sqlite3.sqlite_version
