"""How IFTTT authenticates: the service key, or a user's OAuth2 bearer token."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
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


def access_token_for(raw: str) -> AccessToken | None:
    """The live access token with scope `ifttt` for this bearer string, or None."""
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    token = AccessToken.objects.select_related("user").filter(token_checksum=checksum).first()
    if token is None or token.user is None or not token.user.is_active:
        return None
    if token.expires <= timezone.now() or not token.allow_scopes([IFTTT_SCOPE]):
        return None
    return token


class BearerTokenAuthentication(BaseAuthentication):
    """An OAuth2 access token issued by our provider to IFTTT, with scope `ifttt`.

    One indexed lookup by the token's checksum; a revoked token is deleted by the provider, so
    it is refused on the very next call.
    """

    def authenticate(self, request: Request) -> tuple[Any, AccessToken]:
        header = request.headers.get("Authorization", "")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("An OAuth2 access token is required: send 'Authorization: Bearer <token>'.")
        token = access_token_for(raw.strip())
        if token is None:
            raise Unauthorized(
                "The access token is invalid, expired or revoked. Reconnect the service on IFTTT to get a new one."
            )
        return (token.user, token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ifttt"'
