"""Where our OAuth2 provider deliberately differs from django-oauth-toolkit's defaults.

Wired in through `OAUTH2_PROVIDER` (`OAUTH2_VALIDATOR_CLASS`, `OAUTH2_BACKEND_CLASS`). Each difference
is pinned by a regression test in `accounts/tests/test_dot_regressions.py`.
"""

from __future__ import annotations

from typing import Any

from oauth2_provider.exceptions import FatalClientError
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors


def redirect_uri_registered(application: Any, redirect_uri: str | None) -> bool:
    """Exactly one of the application's registered redirect URIs, character for character.

    The toolkit also accepts a registered URI with extra query parameters appended; OAuth 2.1 and
    the OAuth security BCP require exact matching, and IFTTT has exactly one redirect URI.
    """
    return bool(redirect_uri) and redirect_uri in application.redirect_uris.split()


class ServiceOAuth2Validator(OAuth2Validator):
    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Any, *args: Any, **kwargs: Any) -> bool:
        return redirect_uri_registered(request.client, redirect_uri)

    def revoke_token(self, token: str, token_type_hint: str | None, request: Any, *args: Any, **kwargs: Any) -> None:
        """Revoke the token, and the whole grant it came from, if it belongs to the calling client.

        The toolkit would revoke any client's token and leave its refresh token (or a rotated one
        still inside the grace period) able to mint a new access token straight away.
        """
        from .access import oauth_token_revoke

        oauth_token_revoke(token=token, application=request.client)


class ServiceOAuthLibCore(OAuthLibCore):
    def create_authorization_response(self, request: Any, scopes: Any, credentials: Any, allow: bool) -> Any:
        # On "Deny" the toolkit redirects to the redirect URI posted back by the consent form
        # without checking it again; check it before any redirect, so only a registered URI is used.
        if not allow:
            application = get_application_model().objects.filter(client_id=credentials.get("client_id")).first()
            if application is None or not redirect_uri_registered(application, credentials.get("redirect_uri")):
                raise FatalClientError(error=errors.MismatchingRedirectURIError())
        return super().create_authorization_response(request, scopes, credentials, allow)
