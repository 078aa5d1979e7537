"""The django-oauth-toolkit behaviours IFTTT's authentication relies on, pinned so an upgrade cannot
quietly change them: token lifetimes, refresh-token rotation and its grace period, revocation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.test import RequestFactory
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken

from accounts.views import AuthorizationView
from protocol.access import ifttt_access_revoke, ifttt_token_issue
from protocol.tokens import token_digest, token_stored

from .conftest import TokenEndpoint, body, code_for


def _connect(signed_in: Any, token_endpoint: TokenEndpoint) -> dict[str, Any]:
    client, _ = signed_in
    response = token_endpoint.exchange(code_for(client))
    assert response.status_code == 200, response.content
    return body(response)


def test_access_tokens_do_not_expire_by_time(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    tokens = _connect(signed_in, token_endpoint)
    assert tokens["expires_in"] >= 99 * 365 * 24 * 3600
    stored = AccessToken.objects.get(token_checksum=token_digest(tokens["access_token"]))
    assert stored.expires > timezone.now() + timedelta(days=99 * 365)


def test_refresh_tokens_do_not_expire_by_time(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    tokens = _connect(signed_in, token_endpoint)
    ten_years_ago = timezone.now() - timedelta(days=3650)
    RefreshToken.objects.filter(token=token_stored(tokens["refresh_token"])).update(created=ten_years_ago)
    assert token_endpoint.refresh(tokens["refresh_token"]).status_code == 200


def test_refresh_rotates_both_tokens(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    tokens = _connect(signed_in, token_endpoint)
    refreshed = body(token_endpoint.refresh(tokens["refresh_token"]))
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    # IFTTT only refreshes after a 401, so retiring the old access token at once costs nothing.
    assert token_endpoint.user_info(tokens["access_token"]).status_code == 401
    assert token_endpoint.user_info(refreshed["access_token"]).status_code == 200
    old = RefreshToken.objects.get(token=token_stored(tokens["refresh_token"]))
    assert old.revoked is not None


def test_old_refresh_token_works_within_the_grace_period_and_not_after(
    signed_in: Any, token_endpoint: TokenEndpoint
) -> None:
    tokens = _connect(signed_in, token_endpoint)
    refreshed = body(token_endpoint.refresh(tokens["refresh_token"]))

    # Just inside the grace period, the old refresh token still answers (IFTTT lost the first answer).
    # Only digests are stored, so the first pair cannot be repeated: the retry gets a fresh pair of
    # the same grant, and the first one keeps working too.
    grace = settings.OAUTH2_PROVIDER["REFRESH_TOKEN_GRACE_PERIOD_SECONDS"]
    assert grace >= 24 * 3600
    almost = timezone.now() - timedelta(seconds=grace - 60)
    RefreshToken.objects.filter(token=token_stored(tokens["refresh_token"])).update(revoked=almost)
    retried = token_endpoint.refresh(tokens["refresh_token"])
    assert retried.status_code == 200
    current = body(retried)
    assert token_endpoint.user_info(current["access_token"]).status_code == 200
    assert token_endpoint.user_info(refreshed["access_token"]).status_code == 200

    # Past it, the old one is refused, and the current pair keeps working.
    expired = timezone.now() - timedelta(seconds=grace + 60)
    RefreshToken.objects.filter(token=token_stored(tokens["refresh_token"])).update(revoked=expired)
    late = token_endpoint.refresh(tokens["refresh_token"])
    assert late.status_code == 400
    assert body(late)["error"] == "invalid_grant"
    assert token_endpoint.user_info(current["access_token"]).status_code == 200
    assert token_endpoint.refresh(current["refresh_token"]).status_code == 200


def test_revoking_a_refresh_token_ends_the_grant_despite_the_grace_period(
    signed_in: Any, token_endpoint: TokenEndpoint
) -> None:
    tokens = _connect(signed_in, token_endpoint)
    refreshed = body(token_endpoint.refresh(tokens["refresh_token"]))
    assert token_endpoint.revoke(refreshed["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert token_endpoint.user_info(refreshed["access_token"]).status_code == 401
    for old in (refreshed["refresh_token"], tokens["refresh_token"]):
        response = token_endpoint.refresh(old)
        assert response.status_code == 400, old
        assert body(response)["error"] == "invalid_grant"


def test_revoking_an_access_token_leaves_other_grants_alone(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    first = _connect(signed_in, token_endpoint)
    second = _connect(signed_in, token_endpoint)
    assert token_endpoint.revoke(first["access_token"]).status_code == 200
    assert token_endpoint.user_info(first["access_token"]).status_code == 401
    assert token_endpoint.user_info(second["access_token"]).status_code == 200
    assert token_endpoint.refresh(second["refresh_token"]).status_code == 200


def test_a_client_cannot_revoke_another_clients_token(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    _, user = signed_in
    tokens = _connect(signed_in, token_endpoint)
    Application.objects.create(
        name="Other",
        client_id="other-client",
        client_secret="other-secret",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://other.example/callback",
        user=user,
    )
    response = token_endpoint.post(
        "/oauth/revoke_token/",
        {"token": tokens["access_token"], "client_id": "other-client", "client_secret": "other-secret"},
    )
    assert response.status_code == 200  # RFC 7009: the answer does not reveal whether the token exists
    assert token_endpoint.user_info(tokens["access_token"]).status_code == 200


def test_revocation_needs_the_client_secret(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    tokens = _connect(signed_in, token_endpoint)
    response = token_endpoint.revoke(tokens["access_token"], client_secret="wrong")
    assert response.status_code == 401
    assert token_endpoint.user_info(tokens["access_token"]).status_code == 200


def test_disconnect_revokes_every_ifttt_token_of_the_user_only(
    signed_in: Any, token_endpoint: TokenEndpoint, make_user: Any
) -> None:
    _, user = signed_in
    tokens = _connect(signed_in, token_endpoint)
    rotated = body(token_endpoint.refresh(tokens["refresh_token"]))
    issued = ifttt_token_issue(user=user)
    someone_else = ifttt_token_issue(user=make_user("bob"))

    removed = ifttt_access_revoke(user=user)

    # Two access tokens and three refresh tokens (one of them rotated, still in its grace period).
    assert removed == 5
    for access in (rotated["access_token"], issued.token):
        assert token_endpoint.user_info(access).status_code == 401
    for refresh in (tokens["refresh_token"], rotated["refresh_token"]):
        assert body(token_endpoint.refresh(refresh))["error"] == "invalid_grant"
    assert token_endpoint.user_info(someone_else.token).status_code == 200
    assert ifttt_access_revoke(user=user) == 0


def test_prompt_none_never_redirects_to_an_unregistered_uri(ifttt_app: Any) -> None:
    """The toolkit's own view would redirect an anonymous prompt=none request to any redirect_uri."""
    from django.contrib.auth.models import AnonymousUser

    evil = RequestFactory().get(
        "/oauth/authorize/",
        {"client_id": settings.IFTTT_CLIENT_ID, "prompt": "none", "redirect_uri": "https://evil.example/x"},
    )
    evil.user = AnonymousUser()
    response = AuthorizationView.as_view()(evil)
    assert response.status_code == 400
    assert "Location" not in response

    registered = RequestFactory().get(
        "/oauth/authorize/",
        {"client_id": settings.IFTTT_CLIENT_ID, "prompt": "none", "redirect_uri": settings.IFTTT_REDIRECT_URI},
    )
    registered.user = AnonymousUser()
    response = AuthorizationView.as_view()(registered)
    assert response.status_code == 302
    assert response["Location"] == f"{settings.IFTTT_REDIRECT_URI}?error=login_required"


def test_client_secrets_are_stored_hashed_but_not_with_the_slow_password_hash(db: Any, settings: Any) -> None:
    from django.contrib.auth.hashers import check_password, make_password

    from protocol.access import ifttt_application_ensure

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "protocol.hashers.ClientSecretHasher",
    ]
    settings.IFTTT_CLIENT_SECRET = "a-long-random-client-secret"
    # An application saved before: its secret under the slow hash is moved to the fast one.
    Application.objects.create(
        client_id=settings.IFTTT_CLIENT_ID,
        client_secret=make_password(settings.IFTTT_CLIENT_SECRET),
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=settings.IFTTT_REDIRECT_URI,
    )
    stored = ifttt_application_ensure().client_secret
    assert stored.startswith("client_secret_sha256$")
    assert settings.IFTTT_CLIENT_SECRET not in stored
    assert check_password(settings.IFTTT_CLIENT_SECRET, stored)
    assert not check_password("a-long-random-client-secreT", stored)
    assert ifttt_application_ensure().client_secret == stored  # idempotent: not re-hashed on every deploy
    # People's passwords still get the slow hash.
    assert make_password("correct-horse-battery").startswith("pbkdf2_sha256$")


def test_a_consent_form_posted_with_an_unknown_client_is_a_clear_400(ifttt_app: Any, make_user: Any) -> None:
    """The toolkit's own view answers this with a 500 (Application.DoesNotExist)."""
    request = RequestFactory().post(
        "/oauth/authorize/",
        {
            "client_id": "no-such-client",
            "redirect_uri": settings.IFTTT_REDIRECT_URI,
            "response_type": "code",
            "scope": "ifttt",
            "state": "s",
            "allow": "Allow",
        },
    )
    request.user = make_user("alice")
    request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
    response = AuthorizationView.as_view()(request)
    assert response.status_code == 400
    assert "Location" not in response
    assert b"This link cannot be used" in response.content


def test_rotated_refresh_tokens_are_pruned_after_the_grace_period(
    signed_in: Any, token_endpoint: TokenEndpoint
) -> None:
    from protocol.access import oauth_rotated_tokens_prune

    tokens = _connect(signed_in, token_endpoint)
    first = body(token_endpoint.refresh(tokens["refresh_token"]))
    second = body(token_endpoint.refresh(first["refresh_token"]))
    grace = settings.OAUTH2_PROVIDER["REFRESH_TOKEN_GRACE_PERIOD_SECONDS"]
    # The first rotated-out token is past its grace period; the second is still inside it.
    RefreshToken.objects.filter(token=token_stored(tokens["refresh_token"])).update(
        revoked=timezone.now() - timedelta(seconds=grace + 60)
    )
    assert oauth_rotated_tokens_prune() == 1
    assert not RefreshToken.objects.filter(token=token_stored(tokens["refresh_token"])).exists()
    assert token_endpoint.refresh(first["refresh_token"]).status_code == 200  # still within its grace
    assert token_endpoint.user_info(second["access_token"]).status_code == 200
