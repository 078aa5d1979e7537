"""JSON in and out, as IFTTT expects it: UTF-8 declared, bodies bounded, objects only, text storable.

Every body is checked here once, before any view reads it, for what no endpoint can take: more bytes than
API_MAX_BODY_BYTES (413), broken JSON, nesting past MAX_JSON_DEPTH, numbers past any float, and text a
database cannot store (a NUL character, a lone UTF-16 surrogate) (400). Form posts and query strings (the
OAuth token endpoint, the pages) get the same text check from `TextGuardMiddleware`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import parsers, renderers, status
from rest_framework.exceptions import APIException, ParseError

from .errors import IFTTT_PREFIX, errors_body

# Deeper than any body IFTTT or a device sends; deep enough to refuse a 10 KB body of brackets without
# exhausting the interpreter's stack.
MAX_JSON_DEPTH = 32
# PostgreSQL refuses NUL in text and in jsonb; a lone surrogate cannot be encoded as UTF-8 at all.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def too_large_message(limit: int) -> str:
    return f"The request body is larger than the {limit:,} bytes this endpoint accepts. Send less in one request."


def unstorable_problem(text: str, where: str) -> str | None:
    """Why `text` cannot be taken as text, or None if it can."""
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    what = "a NUL character (\\u0000)" if found.group() == "\x00" else "an unpaired UTF-16 surrogate"
    return f"{where} contains {what}, which text here cannot hold. Remove it and send the request again."


def _where(path: list[str | int]) -> str:
    if not path:
        return "The request body"
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"“{text}”"


# JSON text can only carry a NUL or a surrogate as a \u escape (raw control characters are not valid
# JSON, and UTF-8 cannot encode a surrogate): a body without one needs no look at its strings.
_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def json_check(data: Any, text: str) -> None:
    """Refuse nesting past MAX_JSON_DEPTH and unstorable text in any key or value of `data`, parsed from
    `text`. Iterative (the body may be as deep as json.loads allowed); paths are built only to name a
    problem, so a large clean body costs one pass over its containers."""
    check_text = _ESCAPED_UNSTORABLE.search(text) is not None
    if not check_text and text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
        return
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth >= MAX_JSON_DEPTH:
                raise ParseError(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")
            for key, item in value.items():
                if check_text and UNSTORABLE.search(key):
                    raise ParseError(_text_problem(data))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth >= MAX_JSON_DEPTH:
                raise ParseError(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")
            stack.extend((item, depth + 1) for item in value)
        elif check_text and isinstance(value, str) and UNSTORABLE.search(value):
            raise ParseError(_text_problem(data))


def _text_problem(data: Any) -> str:
    """Where the first unstorable text is, named by its path (within MAX_JSON_DEPTH, as checked)."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            problem = unstorable_problem(value, _where(path))
            if problem:
                return problem
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = unstorable_problem(key, f"A key in {_where(path)}")
                if problem:
                    return problem
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, index]) for index, item in enumerate(value))
    return "The request body contains text that cannot be stored."


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]}… is too large")
    return number


def _int(text: str) -> int:
    # More than 308 digits is past a float's range: no endpoint has a use for it (and past 4,300 digits
    # Python will not read it).
    if len(text.lstrip("-")) > 308:
        raise ValueError(f"the number {text[:40]}… is too large")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# orjson writes the same compact UTF-8 JSON as DRF's renderer for what our views return, about 14 times
# faster (a 50-item poll: 142 µs → 10 µs, a twentieth of a poll's CPU). Types it would write differently
# (dates, dataclasses, lazy text, decimals) are passed to DRF's own encoder, so the bytes stay DRF's.
# One difference: orjson writes NaN as null where DRF refuses it; no answer holds one (readings are
# checked finite when they arrive).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


class JSONRenderer(renderers.JSONRenderer):
    # IFTTT's examples all answer `application/json; charset=utf-8`.
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None or self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return orjson.dumps(data, default=self.encoder_class().default, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:  # an integer past 64 bits, say: DRF writes it (or refuses it) as before
            return super().render(data, accepted_media_type, renderer_context)


class JSONParser(parsers.JSONParser):
    """Reads at most API_MAX_BODY_BYTES and insists on a JSON object at the top level."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(too_large_message(limit))
        if not raw.strip():
            return {}
        try:
            text = raw.decode("utf-8")
            data = json.loads(text, parse_float=_finite, parse_int=_int, parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise ParseError("The request body is not UTF-8 encoded.") from None
        except RecursionError:
            raise ParseError(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.") from None
        except ValueError as exc:
            raise ParseError(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise ParseError('The request body must be a JSON object, such as {"triggerFields": {...}}.')
        json_check(data, text)
        return data


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class TextGuardMiddleware:
    """A NUL or lone surrogate in the path, the query string or a form post is a 400, and a form post
    past DATA_UPLOAD_MAX_MEMORY_SIZE a 413, before any view takes it to the database. The OAuth token
    endpoint answers in OAuth's error shape; the APIs in theirs; pages in plain text."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            problem = self._problem(request)
        except RequestDataTooBig:
            return _error(request, 413, too_large_message(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
        if problem:
            return _error(request, 400, problem)
        return self.get_response(request)

    def _problem(self, request: HttpRequest) -> str | None:
        problem = unstorable_problem(request.path, "The URL")
        if problem:
            return problem
        sources = [("query string", request.GET)]
        if request.method == "POST" and request.content_type in _FORM_TYPES:
            sources.append(("form", request.POST))
        for where, data in sources:
            for key, values in data.lists():
                for text in [key, *values]:
                    problem = unstorable_problem(text, f"The {where} field “{_printable(key)}”")
                    if problem:
                        return problem
        return None


def _printable(text: str) -> str:
    return UNSTORABLE.sub("?", text)[:50]


def _error(request: HttpRequest, status_code: int, message: str) -> HttpResponse:
    path = request.path
    if path.startswith("/oauth/"):
        body: dict[str, Any] = {"error": "invalid_request", "error_description": message}
    elif path.startswith(IFTTT_PREFIX):
        body = errors_body(message)
    elif path.startswith("/api/"):
        body = {"detail": message, "code": "invalid_text" if status_code == 400 else "payload_too_large"}
    else:
        return HttpResponse(message, status=status_code, content_type="text/plain; charset=utf-8")
    return JsonResponse(body, status=status_code, content_type="application/json; charset=utf-8")
