"""Opaque query cursors: the next page's sort key, signed so a forged cursor is a clear 400."""

from __future__ import annotations

from typing import Any

from django.core import signing

from core.errors import BadRequest

_SALT = "queries.cursor"


def cursor_encode(*, slug: str, after: dict[str, Any]) -> str:
    return signing.dumps({"q": slug, "a": after}, salt=_SALT, compress=True)


def cursor_decode(*, slug: str, cursor: Any) -> dict[str, Any] | None:
    """The `after` key a cursor carries; None for no cursor. Raises BadRequest for any other cursor."""
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str):
        raise BadRequest("“cursor” must be the text of a cursor this service returned.")
    try:
        payload = signing.loads(cursor, salt=_SALT)
    except signing.BadSignature:
        raise BadRequest(
            "That cursor was not issued by this service (or was altered). Start again without a cursor."
        ) from None
    if not isinstance(payload, dict) or payload.get("q") != slug or not isinstance(payload.get("a"), dict):
        raise BadRequest(f"That cursor belongs to another query, not “{slug}”. Start again without a cursor.")
    after: dict[str, Any] = payload["a"]
    return after
