"""The request id, carried from IFTTT's request into every log line and into the tasks it causes.

IFTTT sends `X-Request-ID` with each call; a request without one gets a fresh id. The id lives in a
context variable for the request (or task), log records carry it as `request_id`, and a task enqueued
while it is set carries it in its message headers, so a failed Realtime delivery's log line names the
poll or event that caused it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_SAFE = re.compile(r"[^A-Za-z0-9._:-]")

request_id_var: ContextVar[str] = ContextVar("request_id", default="")


def request_id_clean(value: str) -> str:
    """An id fit for logs and headers: printable, at most 64 characters (or empty)."""
    return _SAFE.sub("", value)[:64]


class RequestIdMiddleware:
    """First in the chain: every log line of the request, and every task it enqueues, carries its id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_clean(request.headers.get(HEADER, "")) or uuid.uuid4().hex
        # Left set until the response is closed: Django logs a 4xx or 5xx after the middleware returns.
        request_id_var.set(request_id)
        response = self.get_response(request)
        response.headers.setdefault(HEADER, request_id)
        return response


@receiver(request_finished, dispatch_uid="request_id_finished")
def _request_id_finished(**_: Any) -> None:
    request_id_var.set("")


class RequestIdFilter(logging.Filter):
    """Puts the current request (or task) id on every record as `request_id` ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


@before_task_publish.connect(dispatch_uid="request_id_publish")
def _request_id_into_task(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


@task_prerun.connect(dispatch_uid="request_id_prerun")
def _request_id_from_task(task: Any = None, **_: Any) -> None:
    request_id = getattr(getattr(task, "request", None), TASK_HEADER, None) or ""
    request_id_var.set(request_id_clean(str(request_id)))


@task_postrun.connect(dispatch_uid="request_id_postrun")
def _request_id_done(**_: Any) -> None:
    request_id_var.set("")


# --- Error reporting ---------------------------------------------------------------------------------

_SECRET_HEADERS = {"authorization", "ifttt-service-key", "ifttt-channel-key", "cookie", "x-csrftoken"}
_SECRET_KEYS = re.compile(r"token|secret|password|key|code|authorization|cookie|session", re.I)
FILTERED = "[Filtered]"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: FILTERED if _SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def error_event_scrub(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """Remove tokens, keys, codes, cookies and bodies from an error report before it leaves."""
    request = event.get("request") or {}
    headers = request.get("headers") or {}
    if isinstance(headers, dict):
        request["headers"] = {k: FILTERED if k.lower() in _SECRET_HEADERS else v for k, v in headers.items()}
    if "data" in request:
        request["data"] = FILTERED
    if "cookies" in request:
        request["cookies"] = FILTERED
    if isinstance(request.get("query_string"), str) and request["query_string"]:
        request["query_string"] = FILTERED
    for name in ("extra", "contexts"):
        if name in event:
            event[name] = _scrub(event[name])
    return event


def error_reporting_init(*, dsn: str, environment: str, release: str) -> None:
    """Report unexpected errors to Sentry (or a compatible service) when a DSN is configured."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        send_default_pii=False,
        max_request_body_size="never",
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=error_event_scrub,  # type: ignore[arg-type]
    )
