"""JSON in and out, as IFTTT expects it: UTF-8 declared, bodies bounded, objects only."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError


class JSONRenderer(renderers.JSONRenderer):
    # IFTTT's examples all answer `application/json; charset=utf-8`.
    charset = "utf-8"


class JSONParser(parsers.JSONParser):
    """Reads at most API_MAX_BODY_BYTES and insists on a JSON object at the top level."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(f"The request body is larger than the {limit:,} bytes this endpoint accepts.")
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ParseError("The request body is not UTF-8 encoded.") from None
        except ValueError as exc:
            raise ParseError(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise ParseError('The request body must be a JSON object, such as {"triggerFields": {...}}.')
        return data
