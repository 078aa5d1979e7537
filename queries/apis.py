"""The query endpoints of the Service API."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import BadRequest
from protocol.apis import UserApi, body_fields, body_limit, body_text, lookup, options_response, required_fields_present
from protocol.registry import QuerySpec, registry

from .cursors import cursor_decode, cursor_encode

QUERY_DEFAULT_LIMIT = 50
# Far longer than any cursor this service issues; a longer one is refused before it is decoded.
CURSOR_MAX_LENGTH = 2000


def _query(slug: str) -> QuerySpec:
    spec: QuerySpec = lookup(registry.queries, slug, "query")
    return spec


class QueryPerformApi(UserApi):
    def post(self, request: Request, slug: str) -> Response:
        spec = _query(slug)
        fields = body_fields(request, "queryFields", required=bool(spec.fields))
        required_fields_present(spec, fields, "queryFields")
        values = {f.slug: fields.get(f.slug) for f in spec.fields}
        problems = spec.check_fields(request.user, values)
        if problems:
            raise BadRequest(" ".join(problems.values()))
        limit = body_limit(request, default=QUERY_DEFAULT_LIMIT)
        after = cursor_decode(slug=slug, cursor=body_text(request, "cursor", max_length=CURSOR_MAX_LENGTH))
        page = spec.run(request.user, values, limit, after)
        body: dict[str, Any] = {"data": page.rows}
        # The last page has no cursor at all (not null): that is how IFTTT knows it is the last.
        if page.after is not None:
            body["cursor"] = cursor_encode(slug=slug, after=page.after)
        return Response(body)


class QueryFieldOptionsApi(UserApi):
    def post(self, request: Request, slug: str, field: str) -> Response:
        return options_response(request.user, _query(slug), field, "query")
