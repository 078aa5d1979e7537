"""The trigger endpoints of the Service API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import BadRequest
from protocol.apis import UserApi, body_fields, body_limit, body_text, lookup, lookup_field, options_response
from protocol.registry import TriggerSpec, registry

from .models import TriggerIdentity
from .selectors import trigger_events_list, trigger_item
from .services import trigger_identity_delete, trigger_identity_record, trigger_identity_touch

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
