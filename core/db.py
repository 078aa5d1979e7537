"""Database helpers: the hot paths' asynchronous commit, and answering 503 when the database is unreachable."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, models
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from .logs import Outage

# Joined into a single-statement write, this turns off waiting for the WAL to reach the disk for that
# statement's own transaction (set_config(…, true) lasts until its commit). For bookkeeping only (the
# API log, "last polled"): a database crash can lose the last fraction of a second of such writes,
# never an event.
ASYNC_COMMIT_FROM = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"


def async_commit_available() -> bool:
    """True where ASYNC_COMMIT_FROM applies: PostgreSQL, with the statement its own transaction."""
    return connection.vendor == "postgresql" and connection.get_autocommit()


def bookkeeping_insert(row: models.Model) -> None:
    """Insert `row` in one statement whose commit, on PostgreSQL, does not wait for the disk: a log row
    may be lost if the database crashes in the next instant, but the request that writes it does not pay
    a disk flush for its bookkeeping. Elsewhere (SQLite, inside a transaction) a plain INSERT.
    The row's `created_at`, if it has one, is set here, as auto_now_add would."""
    if not async_commit_available():
        row.save(force_insert=True)
        return
    model = type(row)
    if hasattr(row, "created_at"):
        row.created_at = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
    placeholders = ", ".join(["%s"] * len(values))
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {placeholders} FROM {ASYNC_COMMIT_FROM}",  # noqa: S608 - names from the model
            values,
        )


# --- The database unreachable: 503, not 500 ---------------------------------------------------------

_outage = Outage(logging.getLogger(__name__), "The database is unreachable (answering 503 with Retry-After)")
UNAVAILABLE_MESSAGE = "The service is briefly unavailable (its database cannot be reached). Please try again shortly."


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether `exc` says the database could not be reached (down, restarting, connection lost).

    Django raises OperationalError for those, and InterfaceError for a connection already closed; an
    OperationalError with a live connection (a lock timeout, a cancelled statement) is not an outage.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if connection.vendor == "sqlite":
        return "unable to open database" in str(exc)
    return connection.connection is None or not connection.is_usable()


def database_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 with Retry-After and a readable message (JSON for the APIs, a short page for people)."""
    from .errors import IFTTT_PREFIX, errors_body

    _outage.failed(exc)
    with contextlib.suppress(Exception):
        connection.close()  # the next request connects afresh instead of reusing a broken connection
    if request.path.startswith(IFTTT_PREFIX):
        response: HttpResponse = JsonResponse(errors_body(UNAVAILABLE_MESSAGE), status=503)
    elif request.path.startswith("/api/"):
        response = JsonResponse({"detail": UNAVAILABLE_MESSAGE, "code": "unavailable"}, status=503)
    else:
        response = HttpResponse(UNAVAILABLE_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(settings.HEALTH_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A view that could not reach the database answers 503 + Retry-After, logged once per outage."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 500:
            _outage.succeeded()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if database_unreachable(exception):
            return database_unavailable_response(request, exception)
        return None
