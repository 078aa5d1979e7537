"""The API log: one `ApiCall` row for every call IFTTT makes under /ifttt/.

The view classes note what only they know (slug, trigger identity, items returned, the newest event id)
on the Django request through `api_log_note`; this middleware adds the timing, headers and outcome
and writes the row once the response has been sent: buffered and written in batches (one INSERT
for up to API_LOG_BATCH calls, within API_LOG_FLUSH_SECONDS), or one INSERT per call when that is 0.
Tokens, keys and bodies are never stored: a bearer token is kept only as a short fingerprint of its
hash.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.signals import request_finished
from django.db import connection, models, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.exceptions import APIException

from core import metrics
from core.db import bookkeeping_insert
from core.errors import IFTTT_PREFIX
from core.logs import Outage

from .models import ApiCall
from .registry import registry

logger = logging.getLogger(__name__)
# While the database is away every call's row fails: say so when it starts and when it ends, not with a
# traceback per request.
_record_outage = Outage(logger, "Could not record calls in the API log")

NOTE_ATTRIBUTE = "_api_log"
FINGERPRINT_LENGTH = 16
_ERROR_MESSAGE_LIMIT = 1000


def _clean(text: str) -> str:
    """Text a database can store: no NUL (PostgreSQL refuses it) and no lone surrogate (not UTF-8).
    What IFTTT sends is logged as it was meant, not refused: the log never costs a call its answer."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def token_fingerprint(raw_token: str) -> str:
    """The start of the token's SHA-256: equals the start of the provider's `token_checksum`."""
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def api_log_note(request: Any, response: Any, view_kwargs: dict[str, Any]) -> None:
    """Called by the Service API views as a response is finalised: note what the log row needs.

    `request` is DRF's request; the note goes on the Django request beneath it. Reads only what is
    already in memory (never parses the body again), so it costs microseconds.
    """
    django_request = getattr(request, "_request", request)
    note: dict[str, Any] = {"slug": _clean(str(view_kwargs.get("slug", "")))[:100]}
    # DRF sets the authenticated user on the Django request too (None with the service key).
    user = getattr(django_request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        note["user_id"] = user.pk
    try:
        data = request.data  # parsed once by the view; a body that failed to parse reads as empty
    except APIException:  # an unparsable or unsupported body: the view already answered it
        data = None
    identity = view_kwargs.get("identity")
    if identity is None and isinstance(data, dict):
        identity = data.get("trigger_identity")
    if isinstance(identity, str):
        note["trigger_identity"] = _clean(identity)[:255]
    body = getattr(response, "data", None)
    if isinstance(body, dict):
        items = body.get("data")
        if isinstance(items, list):
            note["items_returned"] = len(items)
            if items and getattr(django_request.resolver_match, "url_name", "") == "trigger-poll":
                meta = items[0].get("meta") if isinstance(items[0], dict) else None
                if isinstance(meta, dict) and isinstance(meta.get("id"), str):
                    note["newest_event_id"] = _clean(meta["id"])[:32]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            note["error_message"] = _clean(str(errors[0].get("message", "")))[:_ERROR_MESSAGE_LIMIT]
    setattr(django_request, NOTE_ATTRIBUTE, note)


def _endpoint(request: HttpRequest) -> str:
    match = request.resolver_match
    name = match.url_name if match is not None else None
    # Unknown paths resolve to the catch-all view, which has no name.
    return (name or "unknown")[:40]


def _count_poll(request: HttpRequest) -> None:
    slug = request.resolver_match.kwargs.get("slug") if request.resolver_match else None
    # Labels stay bounded: a slug the catalog does not declare is counted as "unknown".
    trigger = slug if slug in registry.triggers else "unknown"
    realtime = "yes" if request.headers.get("X-IFTTT-Realtime") == "1" else "no"
    metrics.trigger_polls.labels(trigger=trigger, realtime=realtime).inc()


def _fingerprint_from(request: HttpRequest) -> str:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return ""
    return token_fingerprint(raw.strip())


def _owner_of_fingerprint(fingerprint: str) -> int | None:
    """Whose token a refused call used: the user of an earlier accepted call with that token."""
    return (
        ApiCall.objects.filter(token_fingerprint=fingerprint, user__isnull=False)
        .order_by("-created_at")
        .values_list("user_id", flat=True)
        .first()
    )


_pending_record: ContextVar[Callable[[], None] | None] = ContextVar("api_log_pending_record", default=None)


def _record_pending(**_: Any) -> None:
    record = _pending_record.get()
    if record is not None:
        _pending_record.set(None)
        record()


request_finished.connect(_record_pending, dispatch_uid="api_log_record_pending")


class ApiLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(IFTTT_PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        endpoint = _endpoint(request)
        metrics.requests.labels(endpoint, metrics.status_class(response.status_code)).inc()
        metrics.request_seconds.labels(endpoint).observe(seconds)
        if endpoint == "trigger-poll":
            _count_poll(request)
        if not settings.IFTTT_API_LOG_ENABLED:
            return response
        duration_ms = seconds * 1000

        def record() -> None:
            try:
                self._record(request, response, duration_ms)
            except Exception as exc:  # the log must never cost IFTTT its answer
                metrics.api_log_dropped.inc()
                _record_outage.failed(exc)
            else:
                _record_outage.succeeded()

        # Written when the server closes the response (Django's request_finished, in the thread that
        # served it), after the body has gone to IFTTT, so the log adds nothing to IFTTT's wait.
        _pending_record.set(record)
        return response

    def _record(self, request: HttpRequest, response: HttpResponse, duration_ms: float) -> None:
        note: dict[str, Any] = getattr(request, NOTE_ATTRIBUTE, {})
        headers = request.headers
        fingerprint = _fingerprint_from(request)
        user_id = note.get("user_id")
        if user_id is None and response.status_code == 401 and fingerprint:
            user_id = _owner_of_fingerprint(fingerprint)
        error_message = note.get("error_message", "")
        if not error_message and response.status_code >= 400:
            error_message = f"HTTP {response.status_code}"
        endpoint = _endpoint(request)
        call = ApiCall(
            method=request.method or "",
            path=_clean(request.path)[:300] if endpoint == "unknown" else "",
            endpoint=endpoint,
            slug=note.get("slug", ""),
            status_code=response.status_code,
            duration_ms=round(duration_ms, 2),
            request_id=_clean(headers.get("X-Request-ID", ""))[:64],
            realtime=headers.get("X-IFTTT-Realtime", "") == "1",
            test_mode=headers.get("IFTTT-Test-Mode", "") == "1",
            user_id=user_id,
            trigger_identity=note.get("trigger_identity", ""),
            items_returned=note.get("items_returned"),
            newest_event_id=note.get("newest_event_id", ""),
            error_message=error_message,
            token_fingerprint=fingerprint,
            created_at=timezone.now(),
        )
        if settings.API_LOG_FLUSH_SECONDS > 0:
            _buffer.add(call, flush_after=settings.API_LOG_FLUSH_SECONDS)
        else:
            bookkeeping_insert(call)


# --- Batched writes --------------------------------------------------------------------------------

# A buffer flushes when this many rows wait, or when its oldest row is API_LOG_FLUSH_SECONDS old.
API_LOG_BATCH = 100


def _insert_many(calls: list[ApiCall]) -> None:
    """All of `calls` in one multi-row INSERT, keeping each row's own time (bulk_create would stamp
    them all with the flush time), committed without waiting for the disk on PostgreSQL."""
    fields = [f for f in ApiCall._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # _record gives every other field a value of its own type, which the database takes as it is; only
    # the time needs the backend's form (asking every field was a tenth of a poll's Python time).
    times = {f.attname for f in fields if isinstance(f, models.DateTimeField)}
    params = [
        f.get_db_prep_save(getattr(call, f.attname), connection) if f.attname in times else getattr(call, f.attname)
        for call in calls
        for f in fields
    ]
    table = connection.ops.quote_name(ApiCall._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(calls))}", params)  # noqa: S608


def _insert_each(calls: list[ApiCall]) -> None:
    """Write `calls` one by one after their batch failed, so a row that cannot be written is the only
    one lost; say once how many were, and why."""
    lost: list[str] = []
    for call in calls:
        try:
            _insert_many([call])
        except Exception as exc:  # the log must never take a request or the process down
            lost.append(f"{type(exc).__name__}: {str(exc).strip()[:200]}")
    if lost:
        metrics.api_log_dropped.inc(len(lost))
        logger.error("%d of %d API-log rows could not be written (first: %s)", len(lost), len(calls), lost[0])


class _Buffer:
    """This process's API-log rows not yet written. One INSERT per batch instead of per call makes
    the log a small part of a poll's cost; rows reach the table within API_LOG_FLUSH_SECONDS (a
    flusher thread writes what a quiet process leaves waiting), and at exit."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.oldest = 0.0
        self.lock = threading.Lock()
        self.flusher: threading.Thread | None = None

    def add(self, call: ApiCall, *, flush_after: float) -> None:
        now = time.monotonic()
        with self.lock:
            if not self.calls:
                self.oldest = now
            self.calls.append(call)
            due = len(self.calls) >= API_LOG_BATCH or now - self.oldest >= flush_after
            if self.flusher is None:
                self.flusher = threading.Thread(
                    target=self._flush_every, args=(flush_after,), name="api-log-flusher", daemon=True
                )
                self.flusher.start()
        if due:
            self.flush()

    def flush(self) -> int:
        with self.lock:
            calls, self.calls = self.calls, []
        if calls:
            try:
                _insert_many(calls)
            except Exception:
                _insert_each(calls)  # one bad row costs only itself
        return len(calls)

    def _flush_every(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            self.flush()
            connection.close_if_unusable_or_obsolete()


_buffer = _Buffer()
atexit.register(_buffer.flush)


def api_log_flush() -> int:
    """Write this process's buffered API-log rows now; how many there were."""
    return _buffer.flush()
