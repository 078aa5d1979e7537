"""How IFTTT authenticates: the service key, or a user's OAuth2 bearer token."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from core.errors import Unauthorized

IFTTT_SCOPE = "ifttt"


def service_key_is_valid(candidate: str) -> bool:
    """Compare against the service key and the staging key, in constant time, always both."""
    valid = False
    for key in (settings.IFTTT_SERVICE_KEY, settings.IFTTT_STAGING_SERVICE_KEY):
        if key and hmac.compare_digest(candidate.encode(), key.encode()):
            valid = True
    return valid


def service_key_from_headers(headers: Any) -> str:
    # `IFTTT-Channel-Key` is the pre-2017 name of the same header; IFTTT may still send it.
    return headers.get("IFTTT-Service-Key") or headers.get("IFTTT-Channel-Key") or ""


class ServiceKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[None, str]:
        key = service_key_from_headers(request.headers)
        if not key:
            raise Unauthorized("The IFTTT-Service-Key header is missing.")
        if not service_key_is_valid(key):
            raise Unauthorized("The IFTTT-Service-Key is not this service's key.")
        return (None, "service-key")

    def authenticate_header(self, request: Request) -> str:
        return "IFTTT-Service-Key"


# --- Bearer tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BearerToken:
    """A live access token with scope `ifttt`, as a request holds it (`request.auth`).

    Not the provider's model: a poll reads these two numbers in the statement that does its work,
    and building an `AccessToken` (with its user through select_related) was most of a poll's
    authentication time (bench/poll.py, "where the time goes").
    """

    id: int
    user_id: int


def bearer_from_headers(headers: Any) -> str:
    """The token of an `Authorization: Bearer <token>` header, or "" for anything else."""
    scheme, _, raw = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return raw.strip()


def token_checksum(raw: str) -> str:
    """django-oauth-toolkit's `token_checksum` of a bearer string: the indexed column tokens are found by
    (the `token` column itself may hold no secret)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def token_scope_allows(scope: str) -> bool:
    """The provider's own rule (`AccessToken.allow_scopes`): scopes are separated by whitespace."""
    return IFTTT_SCOPE in scope.split()


# The token conditions as SQL, for statements that authenticate and work in one round trip
# (triggers.services.trigger_poll_fast). Parameters: checksum, now. The same rule as live_token_orm.
LIVE_TOKEN_SQL = (
    "SELECT t.id, t.user_id FROM {token} AS t JOIN {user} AS u ON u.id = t.user_id "  # noqa: S608 - names from the models
    "WHERE t.token_checksum = %s AND t.expires > %s AND u.is_active "
    f"AND '{IFTTT_SCOPE}' = ANY(regexp_split_to_array(btrim(t.scope), '\\s+'))"
)


@cache
def live_token_sql() -> str:
    user = get_user_model()
    return LIVE_TOKEN_SQL.format(
        token=connection.ops.quote_name(AccessToken._meta.db_table),
        user=connection.ops.quote_name(user._meta.db_table),
    )


def live_token_orm(checksum: str, now: datetime) -> BearerToken | None:
    """The ORM form of LIVE_TOKEN_SQL (SQLite): the live `ifttt` token with this checksum, or None."""
    row = (
        AccessToken.objects.filter(token_checksum=checksum, expires__gt=now, user__is_active=True)
        .values_list("id", "user_id", "scope")
        .first()
    )
    if row is None or not token_scope_allows(row[2]):
        return None
    return BearerToken(row[0], row[1])


@cache
def _user_columns() -> tuple[list[str], str]:
    fields = get_user_model()._meta.concrete_fields
    return [f.attname for f in fields], ", ".join(f"u.{connection.ops.quote_name(f.column)}" for f in fields)


def bearer_user(user_id: int) -> Any:
    """The token's user, known only by id (other fields load if something reads them): what a poll
    needs of it is the id, and reading the rest would cost the poll a second statement."""
    return get_user_model().from_db(connection.alias, ["id", "is_active"], [user_id, True])


def _access_token_postgresql(checksum: str, now: datetime) -> tuple[Any, BearerToken] | None:
    attnames, columns = _user_columns()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT live.id, {columns} FROM ({live_token_sql()}) AS live "  # noqa: S608 - names from the models
            f"JOIN {connection.ops.quote_name(get_user_model()._meta.db_table)} AS u ON u.id = live.user_id",
            [checksum, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    user = get_user_model().from_db(connection.alias, attnames, row[1:])
    return user, BearerToken(row[0], user.pk)


def _access_token_orm(checksum: str, now: datetime) -> tuple[Any, BearerToken] | None:
    token = live_token_orm(checksum, now)
    if token is None:
        return None
    user = get_user_model().objects.filter(pk=token.user_id).first()
    return None if user is None else (user, token)


def access_token_for(raw: str) -> tuple[Any, BearerToken] | None:
    """The user and live access token with scope `ifttt` for this bearer string, or None.

    One indexed statement on PostgreSQL (token and user together, read as a row); the ORM elsewhere.
    Nothing is cached, so a revoked token (the provider deletes it) is refused on the very next call.
    """
    checksum, now = token_checksum(raw), timezone.now()
    if connection.vendor == "postgresql":
        return _access_token_postgresql(checksum, now)
    return _access_token_orm(checksum, now)


class BearerTokenAuthentication(BaseAuthentication):
    """An OAuth2 access token issued by our provider to IFTTT, with scope `ifttt`.

    Ours rather than django-oauth-toolkit's `OAuth2Authentication`: that class builds an oauthlib
    request and validates through its server for every call, and looks the token up with
    select_related of its application and user; bench/poll.py's breakdown measures both classes on
    the same requests ("authentication alone"), and ours costs a fraction of it. Same provider,
    same tokens, same revocation.
    """

    def authenticate(self, request: Request) -> tuple[Any, BearerToken]:
        raw = bearer_from_headers(request.headers)
        if not raw:
            raise Unauthorized("An OAuth2 access token is required: send 'Authorization: Bearer <token>'.")
        found = access_token_for(raw)
        if found is None:
            raise Unauthorized(
                "The access token is invalid, expired or revoked. Reconnect the service on IFTTT to get a new one."
            )
        return found

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ifttt"'
