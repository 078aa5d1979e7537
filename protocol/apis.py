"""The protocol core's endpoints (status, test/setup, user/info) and what every IFTTT view shares."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import BadRequest, NotFound, Unavailable

from .auth import BearerTokenAuthentication, ServiceKeyAuthentication
from .middleware import api_log_note
from .registry import Declaration, Fields, FieldSpec
from .services import endpoint_tests_prepare

# The most items a trigger or query answers in one call, whatever `limit` asks for. IFTTT's own default
# is 50; nothing it sends asks for more than a few hundred.
MAX_LIMIT = 1000


class LoggedApi(APIView):
    """Notes, for the API log (protocol.middleware), what only the view knows about the call."""

    # The OpenAPI description of these endpoints is generated per slug from the registry
    # (protocol.schema); a subclass that should be described from its view sets its own schema.
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Parse the body on every call, including those that read nothing from it: a broken body is a
        # 400 (or 413) wherever it is sent, never silently ignored on one endpoint and refused on another.
        request.data  # noqa: B018

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        api_log_note(request, response, kwargs)
        return response


class ServiceKeyApi(LoggedApi):
    """An endpoint IFTTT calls with the service key (no user)."""

    authentication_classes = [ServiceKeyAuthentication]


class UserApi(LoggedApi):
    """An endpoint IFTTT calls on behalf of a user, with their OAuth2 bearer token."""

    authentication_classes = [BearerTokenAuthentication]


def body_fields(request: Request, key: str, *, required: bool) -> dict[str, Any]:
    """The object under `key` in the body (`triggerFields`, `actionFields`, `queryFields`)."""
    data = request.data
    if key not in data or data[key] is None:
        if required:
            raise BadRequest(f"The request body is missing “{key}”, the object of field values.")
        return {}
    value = data[key]
    if not isinstance(value, dict):
        raise BadRequest(f"“{key}” must be an object of field values, not {type(value).__name__}.")
    return value


def body_limit(request: Request, *, default: int) -> int:
    """`limit` from the body: an integer from 0 up, at most MAX_LIMIT (more is read as MAX_LIMIT, so a
    huge number never reaches the database); absent or null means `default`."""
    value = request.data.get("limit")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest("“limit” must be a whole number of items, such as 50.")
    try:
        limit = int(value)
    except ValueError:
        raise BadRequest("“limit” must be a whole number of items, such as 50.") from None
    if limit < 0:
        raise BadRequest("“limit” cannot be negative.")
    return min(limit, MAX_LIMIT)


def body_text(request: Request, key: str, *, max_length: int) -> str | None:
    """Optional text under `key` in the body (`trigger_identity`, `cursor`): None when absent or empty."""
    value = request.data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"“{key}” must be text, not {type(value).__name__}.")
    if len(value) > max_length:
        raise BadRequest(f"“{key}” is {len(value):,} characters long; at most {max_length} are accepted.")
    return value


def required_fields_present(spec: Declaration, values: Fields, key: str) -> None:
    """Every declared field is present and is text: the request-level check (a 400, never a SKIP)."""
    for field in spec.fields:
        value = values.get(field.slug)
        if field.required and (value is None or value == ""):
            raise BadRequest(f"“{key}” is missing “{field.slug}” ({field.label}).")
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"“{key}.{field.slug}” must be text, not {type(value).__name__}.")


def lookup(table: dict[str, Any], slug: str, kind: str) -> Any:
    spec = table.get(slug)
    if spec is None:
        known = ", ".join(sorted(table)) or "none"
        raise NotFound(f"This service has no {kind} named “{slug}”. Its {kind}s are: {known}.")
    return spec


def lookup_field(spec: Declaration, slug: str, kind: str) -> FieldSpec:
    field = spec.field(slug)
    if field is None:
        known = ", ".join(f.slug for f in spec.fields) or "none"
        raise NotFound(f"The {kind} “{spec.slug}” has no field named “{slug}”. Its fields are: {known}.")
    return field


def options_response(user: Any, spec: Declaration, field_slug: str, kind: str) -> Response:
    field = lookup_field(spec, field_slug, kind)
    if field.options is None:
        raise NotFound(f"The field “{field_slug}” of the {kind} “{spec.slug}” is free text; it has no options.")
    return Response({"data": field.options(user)})


class StatusApi(ServiceKeyApi):
    @extend_schema(
        summary="Service status",
        responses={200: OpenApiResponse(description="Available"), 503: OpenApiResponse(description="Unavailable")},
    )
    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:  # any database failure means we cannot serve IFTTT
            raise Unavailable("The service cannot reach its database; please retry shortly.") from exc
        # IFTTT reads only the status code; a JSON body keeps every /ifttt/ response parseable.
        return Response({"data": {"status": "ok"}})


class TestSetupApi(ServiceKeyApi):
    @extend_schema(summary="Prepare the endpoint tests", request=None, responses={200: dict})
    def post(self, request: Request) -> Response:
        return Response({"data": endpoint_tests_prepare()})


class UserInfoApi(UserApi):
    @extend_schema(summary="The user the token belongs to", responses={200: dict})
    def get(self, request: Request) -> Response:
        user: Any = request.user
        return Response(
            {"data": {"name": user.display_name, "id": user.public_id, "url": f"{settings.SITE_URL}/account/"}}
        )


class NoSuchEndpointApi(APIView):
    """Any path under /ifttt/ or /api/v1/ that matches no endpoint: a JSON 404, even in DEBUG."""

    authentication_classes: list[type] = []
    schema = None  # not an endpoint: keep it out of the OpenAPI description

    def _not_found(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound(f"There is no endpoint at {request.path}. Check the URL against the IFTTT Service API.")

    get = post = put = patch = delete = _not_found
