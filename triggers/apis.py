"""The trigger endpoints of the Service API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException, ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import BadRequest, ServiceError
from core.http import json_check
from protocol.apis import UserApi, body_fields, body_limit, body_text, lookup, lookup_field, options_response
from protocol.auth import bearer_from_headers, bearer_user, token_checksum
from protocol.middleware import api_log_note
from protocol.registry import TriggerSpec, registry

from .models import TriggerIdentity
from .selectors import feed_events, history_events, trigger_events_list, trigger_item
from .services import trigger_identity_delete, trigger_identity_record, trigger_identity_touch, trigger_poll_fast

IDENTITY_MAX_LENGTH = TriggerIdentity._meta.get_field("identity").max_length or 255


def _trigger(slug: str) -> TriggerSpec:
    spec: TriggerSpec = lookup(registry.triggers, slug, "trigger")
    return spec


class TriggerPollApi(UserApi):
    def post(self, request: Request, slug: str) -> Response:
        spec = _trigger(slug)
        fields = body_fields(request, "triggerFields", required=bool(spec.fields))
        limit = body_limit(request, default=settings.IFTTT_TRIGGER_DEFAULT_LIMIT)
        # Only the declared fields identify the timeline; anything else IFTTT adds is ignored.
        values = {f.slug: fields.get(f.slug) for f in spec.fields}
        identity_value = body_text(request, "trigger_identity", max_length=IDENTITY_MAX_LENGTH)
        identity = (
            trigger_identity_touch(identity=identity_value, user=request.user, spec=spec, fields=values)
            if identity_value
            else None
        )
        if identity is None:
            problems = spec.check_fields(request.user, values)
            if problems:
                raise BadRequest(" ".join(problems.values()))
            identity = trigger_identity_record(identity=identity_value, user=request.user, spec=spec, fields=values)
        events = trigger_events_list(spec=spec, user=request.user, fields=values, identity=identity, limit=limit)
        return Response({"data": [trigger_item(spec, event, values) for event in events]})


# --- The hot path: a poll of a known identity ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Body:
    """What body_fields, body_limit and api_log_note read of a request: its parsed body."""

    data: dict[str, Any]
    _request: HttpRequest


_full_poll = TriggerPollApi.as_view()


@csrf_exempt  # as every DRF view is: IFTTT authenticates with a bearer token, not a cookie
def trigger_poll(request: HttpRequest, slug: str) -> HttpResponse:
    """`POST /ifttt/v1/triggers/<slug>`. IFTTT's polls are nearly all re-polls of identities we know,
    with the fields they were recorded with: those are answered here, from one round trip (token,
    identity, feed: trigger_poll_fast) and without DRF's dispatch, which was a third of such a poll's
    Python time (docs/performance.md, "Trigger polling"). Everything else (a new identity, other
    fields, a refused token, a body or limit that is not right, any other method) goes to
    TriggerPollApi, which answers it with the usual authentication order and error envelope; the
    answer here is byte for byte what TriggerPollApi would give (triggers/tests/test_hot_path.py).
    """
    answer = _poll_known_identity(request, slug) if request.method == "POST" else None
    return answer if answer is not None else _full_poll(request, slug=slug)


def _poll_known_identity(request: HttpRequest, slug: str) -> HttpResponse | None:
    raw = bearer_from_headers(request.headers)
    spec = registry.triggers.get(slug)
    if not raw or spec is None or request.content_type != "application/json":
        return None
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > settings.API_MAX_BODY_BYTES:
        return None  # not read here: TriggerPollApi's parser refuses it in its own words
    body = request.body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # TriggerPollApi's parser words the problem
    if not isinstance(data, dict) or not isinstance(data.get("trigger_identity"), str) or not data["trigger_identity"]:
        return None
    try:
        json_check(data, body.decode())  # the parser's own checks: nesting, text no database stores
    except ParseError:
        return None
    parsed = _Body(data, request)
    try:
        fields = body_fields(parsed, "triggerFields", required=bool(spec.fields))  # type: ignore[arg-type]
        limit = body_limit(parsed, default=settings.IFTTT_TRIGGER_DEFAULT_LIMIT)  # type: ignore[arg-type]
    except (APIException, ServiceError):
        return None  # TriggerPollApi answers it, after authenticating
    read = trigger_poll_fast(checksum=token_checksum(raw), identity=data["trigger_identity"], limit=limit)
    identity = read.identity if read is not None else None
    values = {f.slug: fields.get(f.slug) for f in spec.fields}
    if read is None or identity is None or identity.trigger_slug != spec.slug or identity.fields != values:
        return None
    request.user = bearer_user(read.token.user_id)
    events = feed_events(read.rows)
    if len(events) < limit and not identity.feed_complete:
        events = history_events(spec=spec, user=request.user, fields=values, limit=limit)
    answer = {"data": [trigger_item(spec, event, values) for event in events]}
    response = HttpResponse(orjson.dumps(answer), content_type="application/json; charset=utf-8")
    response.headers["Allow"] = "POST, OPTIONS"  # as DRF answers
    response.data = answer  # type: ignore[attr-defined] # what api_log_note reads, as of a DRF response
    api_log_note(parsed, response, {"slug": slug})
    return response


class TriggerFieldOptionsApi(UserApi):
    def post(self, request: Request, slug: str, field: str) -> Response:
        return options_response(request.user, _trigger(slug), field, "trigger")


class TriggerFieldValidateApi(UserApi):
    def post(self, request: Request, slug: str, field: str) -> Response:
        spec = lookup_field(_trigger(slug), field, "trigger")
        message = spec.check(request.user, request.data.get("value"))
        body: dict[str, Any] = {"valid": True} if message is None else {"valid": False, "message": message}
        return Response({"data": body})


class TriggerContextualValidateApi(UserApi):
    """All of a trigger's fields at once. IFTTT's docs and its OpenAPI file name different paths."""

    def post(self, request: Request, slug: str) -> Response:
        spec = _trigger(slug)
        values = body_fields(request, "values", required=True)
        problems = spec.check_fields(request.user, values)
        data = {
            f.slug: {"valid": False, "message": problems[f.slug]} if f.slug in problems else {"valid": True}
            for f in spec.fields
        }
        return Response({"data": data})


class TriggerIdentityApi(UserApi):
    def delete(self, request: Request, slug: str, identity: str) -> Response:
        _trigger(slug)
        trigger_identity_delete(user=request.user, identity=identity)
        return Response({"data": {}})
