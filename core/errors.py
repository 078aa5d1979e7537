"""The project's errors, and the one handler that renders them.

Under `/ifttt/` every error is IFTTT's envelope, `{"errors": [{"message": ...}]}` (plus
`"status": "SKIP"` for an action that can never succeed). Elsewhere (the device API) errors are
ordinary DRF bodies: `{"detail": ..., "code": ...}`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings as drf_settings

logger = logging.getLogger(__name__)

IFTTT_PREFIX = "/ifttt/"


class ServiceError(Exception):
    """An error with a stable code and a message a person can act on."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class BadRequest(ServiceError):
    pass


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Unavailable(ServiceError):
    status_code = 503
    code = "unavailable"


class Skip(ServiceError):
    """This action can never succeed for this input: IFTTT should skip it, not retry."""

    code = "skip"


def errors_body(message: str, *, skip: bool = False) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message}
    if skip:
        error["status"] = "SKIP"
    return {"errors": [error]}


def serializer_problems(errors: Any, path: str = "") -> list[tuple[str, str, str]]:
    """A DRF serializer's nested errors as (field path, code, message), such as
    ("events[2].value", "invalid", "..."): one line a person can read per problem."""
    if isinstance(errors, dict):
        problems: list[tuple[str, str, str]] = []
        for key, value in errors.items():
            inner = path if key in ("", drf_settings.NON_FIELD_ERRORS_KEY) else f"{path}.{key}" if path else str(key)
            problems += serializer_problems(value, inner)
        return problems
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            return [(path, getattr(e, "code", "invalid") or "invalid", str(e)) for e in errors]
        problems = []
        for index, value in enumerate(errors):
            if value:
                problems += serializer_problems(value, f"{path}[{index}]")
        return problems
    return [(path, getattr(errors, "code", "invalid") or "invalid", str(errors))]


def _drf_message(exc: drf_exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return f"{detail} See the IFTTT Service API for the methods each endpoint takes."
    if isinstance(detail, list):
        return "; ".join(str(d) for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {v}" for k, v in detail.items())
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    on_ifttt = bool(request and request.path.startswith(IFTTT_PREFIX))

    if isinstance(exc, ServiceError):
        status, code, message = exc.status_code, exc.code, exc.message
    elif isinstance(exc, drf_exceptions.APIException):
        status = exc.status_code
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid"
        message = _drf_message(exc)
        if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
            status = 401
    else:
        from .db import database_unavailable_response, database_unreachable

        if database_unreachable(exc) and request is not None:
            return database_unavailable_response(request, exc)  # type: ignore[return-value]
        if not on_ifttt:
            return None  # Django's own 500 handling (and logging) takes over.
        logger.exception("Unhandled error on %s", request.path if request else "?")
        status, code, message = 500, "server_error", "Something went wrong on our side. Please try again later."

    body = errors_body(message, skip=isinstance(exc, Skip)) if on_ifttt else {"detail": message, "code": code}
    response = Response(body, status=status)
    if status == 503:
        from django.conf import settings

        response["Retry-After"] = str(settings.HEALTH_RETRY_AFTER_SECONDS)
    if status == 401 and not on_ifttt:
        response["WWW-Authenticate"] = "Device"
    return response


def _json_error(request: HttpRequest, status: int, message: str) -> JsonResponse:
    body = errors_body(message) if request.path.startswith(IFTTT_PREFIX) else {"detail": message, "code": str(status)}
    return JsonResponse(body, status=status, content_type="application/json; charset=utf-8")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith((IFTTT_PREFIX, "/api/v1/"))


def handler404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _is_api(request):
        return _json_error(request, 404, f"There is no endpoint at {request.path}.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Exception("not found"))


def handler500(request: HttpRequest) -> Any:
    from .db import database_unavailable_response, database_unreachable

    failure = sys.exc_info()[1]
    if database_unreachable(failure) and failure is not None:
        return database_unavailable_response(request, failure)
    if _is_api(request):
        return _json_error(request, 500, "Something went wrong on our side. Please try again later.")
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _is_api(request):
        return _json_error(request, 400, "The request could not be understood.")
    from django.views.defaults import bad_request

    return bad_request(request, exception or Exception("bad request"))
