"""Where our OAuth2 provider deliberately differs from django-oauth-toolkit's defaults.

Wired in through `OAUTH2_PROVIDER` (`OAUTH2_VALIDATOR_CLASS`, `OAUTH2_BACKEND_CLASS`). Each difference
is pinned by a regression test in `accounts/tests/test_dot_regressions.py` or
`accounts/tests/test_oauth_security.py`.

Tokens and codes are stored as digests (protocol/tokens.py), so every lookup by a presented token or
code goes through `token_stored`, and nothing the provider would read back from a row (to repeat an
earlier answer) is ever a usable secret.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from oauth2_provider.exceptions import FatalClientError
from oauth2_provider.models import AccessToken, Grant, RefreshToken, get_application_model
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from core import metrics

from .models import SpentAuthorizationCode
from .tokens import token_stored

PKCE_METHOD = "S256"


def redirect_uri_registered(application: Any, redirect_uri: str | None) -> bool:
    """Exactly one of the application's registered redirect URIs, character for character.

    The toolkit also accepts a registered URI with extra query parameters appended; OAuth 2.1 and
    the OAuth security BCP require exact matching, and IFTTT has exactly one redirect URI.
    """
    return bool(redirect_uri) and redirect_uri in application.redirect_uris.split()


def pkce_s256_only(request: Any) -> dict[str, Any]:
    """An authorization request's check (oauthlib `post_auth`): PKCE, when used, is `S256`.

    `plain` sends the verifier itself as the challenge, so whoever sees the authorization request can
    redeem the code; oauthlib accepts it (and assumes it when no method is named).
    """
    if request.code_challenge is not None and request.code_challenge_method != PKCE_METHOD:
        raise errors.UnsupportedCodeChallengeMethodError(
            request=request, description=f"code_challenge_method must be {PKCE_METHOD}."
        )
    return {}


class ServiceOAuth2Validator(OAuth2Validator):
    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Any, *args: Any, **kwargs: Any) -> bool:
        return redirect_uri_registered(request.client, redirect_uri)

    # --- Authorization codes: found by digest, spent the first time they are presented --------------

    def validate_code(self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        """The code is good: spend it now, before the PKCE and redirect-URI checks that follow.

        So a failed exchange (a wrong code_verifier) uses the code up, two exchanges of one code cannot
        both pass, and presenting a spent code revokes what its exchange issued (RFC 6749 §4.1.2).
        """
        stored = token_stored(code)
        grant = Grant.objects.select_related("user").filter(code=stored, application=client).first()
        with transaction.atomic():
            spent = grant is not None and Grant.objects.filter(pk=grant.pk).delete()[0] > 0
            if spent:
                request.spent_code = SpentAuthorizationCode.objects.create(code=stored)
        if grant is None or not spent:
            self._code_replayed(stored, client)
            return False
        # The row is gone; the checks that follow read the grant from here.
        request.grant = grant
        if grant.is_expired():
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        return True

    def _code_replayed(self, stored: str, client: Any) -> None:
        from .access import oauth_code_tokens_revoke

        if SpentAuthorizationCode.objects.filter(code=stored).exists():
            # Recorded too, so an exchange of the same code still running sees it and revokes its own tokens.
            SpentAuthorizationCode.objects.create(code=stored)
            oauth_code_tokens_revoke(code=stored, application=client)

    def _grant(self, code: str, request: Any) -> Any:
        grant = getattr(request, "grant", None)
        return grant if grant is not None else Grant.objects.get(code=token_stored(code), application=request.client)

    def get_code_challenge(self, code: str, request: Any) -> str | None:
        return self._grant(code, request).code_challenge or None

    def get_code_challenge_method(self, code: str, request: Any) -> str | None:
        return self._grant(code, request).code_challenge_method or None

    def confirm_redirect_uri(
        self, client_id: str, code: str, redirect_uri: str, client: Any, *args: Any, **kwargs: Any
    ) -> bool:
        """The token request must repeat the authorization request's redirect URI.

        oauthlib fills in the client's default when the parameter is missing, which would let a code
        be exchanged without it; every authorization request here carries one (IFTTT's always does).
        """
        request = args[0] if args else kwargs.get("request")
        if request is None or getattr(request, "using_default_redirect_uri", False):
            return False
        return bool(self._grant(code, request).redirect_uri_allowed(redirect_uri))

    def invalidate_authorization_code(self, client_id: str, code: str, request: Any, *args: Any, **kwargs: Any) -> None:
        # Already spent by validate_code; this only covers a code that never went through it.
        if getattr(request, "grant", None) is None:
            Grant.objects.filter(code=token_stored(code), application=request.client).delete()

    def get_authorization_code_scopes(self, client_id: str, code: str, redirect_uri: str, request: Any) -> Any:
        return super().get_authorization_code_scopes(client_id, token_stored(code), redirect_uri, request)

    def get_authorization_code_nonce(self, client_id: str, code: str, redirect_uri: str, request: Any) -> Any:
        return super().get_authorization_code_nonce(client_id, token_stored(code), redirect_uri, request)

    # --- Refresh tokens: found by digest; a retry inside the grace period gets a fresh pair ----------

    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        valid = super().validate_refresh_token(token_stored(refresh_token), client, request, *args, **kwargs)
        if getattr(request, "refresh_token", None) is not None:
            request.refresh_token = refresh_token
        return bool(valid)

    def _create_refresh_token(self, request: Any, refresh_token_code: str, access_token: Any, previous: Any) -> Any:
        refresh = super()._create_refresh_token(request, refresh_token_code, access_token, previous)
        request.issued_token_family = refresh.token_family
        return refresh

    def _save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> None:
        """Save the pair; a refresh retried inside the grace period gets a second pair of the same grant.

        The toolkit answers a refresh token reused inside REFRESH_TOKEN_GRACE_PERIOD_SECONDS with the
        pair it issued the first time, read back from the database. Only digests are stored, so the
        retry gets a fresh pair of the same family instead, and the first pair stays valid: IFTTT may
        hold either (a lost answer, or two of its workers refreshing at once). Revoking the grant ends both.
        """
        previous = getattr(request, "refresh_token_instance", None)
        if token.get("refresh_token") and isinstance(previous, RefreshToken):
            previous = RefreshToken.objects.select_for_update().get(pk=previous.pk)
            if previous.revoked is not None and AccessToken.objects.filter(source_refresh_token=previous).exists():
                seconds = token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
                access = self._create_access_token(timezone.now() + timedelta(seconds=seconds), request, token)
                self._create_refresh_token(request, token["refresh_token"], access, previous)
                metrics.oauth_tokens.labels("refreshed").inc()
                return
        super()._save_bearer_token(token, request, *args, **kwargs)
        metrics.oauth_tokens.labels("refreshed" if request.grant_type == "refresh_token" else "issued").inc()
        spent = getattr(request, "spent_code", None)
        if spent is not None:
            spent.token_family = getattr(request, "issued_token_family", None)
            spent.save(update_fields=["token_family"])
            if SpentAuthorizationCode.objects.filter(code=spent.code).exclude(pk=spent.pk).exists():
                from .access import oauth_code_tokens_revoke

                # The same code was presented again while this exchange ran.
                oauth_code_tokens_revoke(code=spent.code, application=request.client)

    def revoke_token(self, token: str, token_type_hint: str | None, request: Any, *args: Any, **kwargs: Any) -> None:
        """Revoke the token, and the whole grant it came from, if it belongs to the calling client.

        The toolkit would revoke any client's token and leave its refresh token (or a rotated one
        still inside the grace period) able to mint a new access token straight away.
        """
        from .access import oauth_token_revoke

        oauth_token_revoke(token=token, application=request.client)


class ServiceOAuthLibCore(OAuthLibCore):
    def __init__(self, server: Any = None) -> None:
        super().__init__(server)
        # oauthlib's documented hook for extra checks on an authorization request.
        checks = self.server.response_types["code"].custom_validators.post_auth
        if pkce_s256_only not in checks:
            checks.append(pkce_s256_only)

    def create_authorization_response(self, request: Any, scopes: Any, credentials: Any, allow: bool) -> Any:
        # On "Deny" the toolkit redirects to the redirect URI posted back by the consent form
        # without checking it again; check it before any redirect, so only a registered URI is used.
        if not allow:
            application = get_application_model().objects.filter(client_id=credentials.get("client_id")).first()
            if application is None or not redirect_uri_registered(application, credentials.get("redirect_uri")):
                raise FatalClientError(error=errors.MismatchingRedirectURIError())
        return super().create_authorization_response(request, scopes, credentials, allow)
