"""The floor a trigger poll is measured against: the poll's work with nothing between WSGI and psycopg2.

`application` is the service's WSGI application (bench settings) with two raw handlers in front:

- `POST /_floor/triggers/<slug>`: the three statements a poll used to make (the token by its
  checksum, the identity's `UPDATE … RETURNING`, the feed), each with psycopg2 on one connection
  per process, then the catalog's own render functions and the service's JSON encoder.
- `POST /_floor1/triggers/<slug>`: the same, with the one statement the poll makes now
  (triggers.services.trigger_poll_fast), prepared once per connection as the poll prepares it.

Both answer exactly what the poll answers for a known identity (bench/poll.py checks the bytes
before measuring), and nothing else: no middleware, no URL resolution, no DRF, no API log, no error
envelope (a request they cannot answer gets a bare 4xx). gunicorn serves the floor from the same
workers as the service, so the two share every condition of a round.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg2

from core.db import ASYNC_COMMIT_FROM
from iftttsvc.wsgi import application as service  # sets Django up: the catalog, the SQL's table names
from protocol.auth import live_token_sql, token_checksum
from protocol.registry import registry
from triggers.models import TriggerIdentity
from triggers.selectors import _feed_sql, feed_events, trigger_item
from triggers.services import POLL_STATEMENT_ASYNC, poll_statements_prepare

THREE, ONE = "/_floor/triggers/", "/_floor1/triggers/"
_JSON = [("Content-Type", "application/json; charset=utf-8")]
_connection: list[Any] = []


def _cursor() -> Any:
    if not _connection:
        connection = psycopg2.connect(os.environ["DATABASE_URL"])
        connection.autocommit = True  # each statement its own transaction, as Django runs them
        with connection.cursor() as cursor:
            for prepare in poll_statements_prepare():  # the poll prepares its statement too
                cursor.execute(prepare)
        _connection.append(connection)
    return _connection[0].cursor()


def _touch_sql() -> str:
    # trigger_identity_touch's statement, word for word.
    table = f'"{TriggerIdentity._meta.db_table}"'
    return (
        f"UPDATE {table} SET last_polled_at = %s FROM {ASYNC_COMMIT_FROM} "  # noqa: S608
        "WHERE identity = %s AND user_id = %s AND deleted_at IS NULL "
        "RETURNING id, trigger_slug, fields, feed_complete"
    )


def _three(checksum: str, identity: str, limit: int, now: datetime) -> tuple[Any, list[Any]] | int:
    with _cursor() as cursor:
        cursor.execute(live_token_sql(), [checksum, now])
        token = cursor.fetchone()
        if token is None:
            return 401
        cursor.execute(_touch_sql(), [now, identity, token[1]])
        found = cursor.fetchone()
        if found is None:
            return 404
        cursor.execute(_feed_sql(), [found[0], limit])
        return found[1:3], cursor.fetchall()


def _one(checksum: str, identity: str, limit: int, now: datetime) -> tuple[Any, list[Any]] | int:
    with _cursor() as cursor:
        cursor.execute(f"EXECUTE {POLL_STATEMENT_ASYNC} (%s, %s, %s, %s, %s)", [checksum, now, now, identity, limit])
        rows = cursor.fetchall()
    if not rows:
        return 401
    if rows[0][2] is None:
        return 404
    return rows[0][3:5], [row[6:] for row in rows if row[6] is not None]


def _answer(start_response: Any, status: str, body: bytes) -> list[bytes]:
    start_response(status, [*_JSON, ("Content-Length", str(len(body)))])
    return [body]


def floor(environ: dict[str, Any], start_response: Any, slug: str, statements: Any) -> list[bytes]:
    spec = registry.triggers.get(slug)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    scheme, _, raw = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if spec is None or scheme.lower() != "bearer" or not isinstance(body.get("trigger_identity"), str):
        return _answer(start_response, "400 Bad Request", b"{}")
    fields = body.get("triggerFields") or {}
    values = {f.slug: fields.get(f.slug) for f in spec.fields}
    limit = int(body.get("limit", 50))
    now = datetime.now(UTC)
    found = statements(token_checksum(raw.strip()), body["trigger_identity"], limit, now)
    if isinstance(found, int):
        return _answer(start_response, f"{found} Refused", b"{}")
    (slug_stored, stored), rows = found
    stored = json.loads(stored) if isinstance(stored, str) else stored
    if slug_stored != spec.slug or stored != values:
        return _answer(start_response, "409 Conflict", b"{}")
    items = [trigger_item(spec, event, values) for event in feed_events(rows)]
    return _answer(start_response, "200 OK", orjson.dumps({"data": items}))


def application(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ.get("PATH_INFO", "")
    if path.startswith(THREE):
        return floor(environ, start_response, path[len(THREE) :], _three)
    if path.startswith(ONE):
        return floor(environ, start_response, path[len(ONE) :], _one)
    return service(environ, start_response)
