"""The action endpoints of the Service API."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from protocol.apis import UserApi, body_fields, lookup, options_response, required_fields_present
from protocol.registry import ActionSpec, registry

from .services import action_run, action_run_url


def _action(slug: str) -> ActionSpec:
    spec: ActionSpec = lookup(registry.actions, slug, "action")
    return spec


class ActionRunApi(UserApi):
    def post(self, request: Request, slug: str) -> Response:
        spec = _action(slug)
        fields = body_fields(request, "actionFields", required=True)
        required_fields_present(spec, fields, "actionFields")
        run = action_run(
            spec=spec,
            user=request.user,
            fields={f.slug: fields.get(f.slug) for f in spec.fields},
            request_id=request.headers.get("X-Request-ID", ""),
            ifttt_source=request.data.get("ifttt_source"),
        )
        return Response({"data": [{"id": run.public_id, "url": action_run_url(run)}]})


class ActionFieldOptionsApi(UserApi):
    def post(self, request: Request, slug: str, field: str) -> Response:
        return options_response(request.user, _action(slug), field, "action")
