"""The trigger endpoints of the Service API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import BadRequest
from protocol.apis import UserApi, body_fields, body_limit, lookup, lookup_field, options_response
from protocol.auth import bearer_from_headers, bearer_user, token_checksum
from protocol.registry import TriggerSpec, registry

from .selectors import feed_events, history_events, trigger_events_list, trigger_item
from .services import trigger_identity_delete, trigger_identity_record, trigger_identity_touch, trigger_poll_fast


def _trigger(slug: str) -> TriggerSpec:
    spec: TriggerSpec = lookup(registry.triggers, slug, "trigger")
    return spec


class TriggerPollApi(UserApi):
    def perform_authentication(self, request: Request) -> None:
        # A poll of a known identity authenticates in the statement that does its work (`_fast`);
        # every other poll authenticates first thing in `post`, as every other endpoint does.
        pass

    def post(self, request: Request, slug: str) -> Response:
        fast = self._fast(request, slug)
        if fast is not None:
            return fast
        _ = request.user  # the ordinary path: a refused token answers 401 before anything else is looked at
        spec = _trigger(slug)
        fields = body_fields(request, "triggerFields", required=bool(spec.fields))
        limit = body_limit(request, default=settings.IFTTT_TRIGGER_DEFAULT_LIMIT)
        # Only the declared fields identify the timeline; anything else IFTTT adds is ignored.
        values = {f.slug: fields.get(f.slug) for f in spec.fields}
        raw_identity = request.data.get("trigger_identity")
        identity_value = raw_identity if isinstance(raw_identity, str) and raw_identity else None
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

    def _fast(self, request: Request, slug: str) -> Response | None:
        """The answer to a poll of a known, live identity with the same fields, from one round trip
        (token, identity, feed: trigger_poll_fast); None where the ordinary path must answer. A
        request it cannot answer goes on with what it learnt: a live token authenticates the request.
        Why a separate path: docs/performance.md ("Trigger polling"), measured against bench/floor.py.
        """
        raw = bearer_from_headers(request._request.headers)
        spec = registry.triggers.get(slug)
        if not raw or spec is None:
            return None
        try:
            fields = body_fields(request, "triggerFields", required=bool(spec.fields))
            limit = body_limit(request, default=settings.IFTTT_TRIGGER_DEFAULT_LIMIT)
        except APIException:
            _ = request.user  # a refused token answers 401 before a problem with the body, as elsewhere
            raise
        identity_value = request.data.get("trigger_identity")
        if not isinstance(identity_value, str) or not identity_value:
            return None
        read = trigger_poll_fast(checksum=token_checksum(raw), identity=identity_value, limit=limit)
        if read is None:
            return None  # refused: the ordinary path looks again and answers 401
        request.user, request.auth = bearer_user(read.token.user_id), read.token
        values = {f.slug: fields.get(f.slug) for f in spec.fields}
        identity = read.identity
        if identity is None or identity.trigger_slug != spec.slug or identity.fields != values:
            return None
        events = feed_events(read.rows)
        if len(events) < limit and not identity.feed_complete:
            events = history_events(spec=spec, user=request.user, fields=values, limit=limit)
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
