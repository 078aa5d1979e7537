"""IFTTT's access to accounts: its OAuth application, the tokens it holds, and revoking them."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import get_hasher, make_password
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from core import metrics

from .hashers import ClientSecretHasher
from .models import DisconnectedBy, SpentAuthorizationCode
from .tokens import token_digest, token_stored

IFTTT_APPLICATION_NAME = "IFTTT"


@transaction.atomic
def ifttt_application_ensure() -> Application:
    """Create or update IFTTT's OAuth2 application from settings. Safe to run on every deploy."""
    application = Application.objects.filter(client_id=settings.IFTTT_CLIENT_ID).first()
    if application is None:
        application = Application(client_id=settings.IFTTT_CLIENT_ID)
    application.name = IFTTT_APPLICATION_NAME
    application.client_type = Application.CLIENT_CONFIDENTIAL
    application.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    application.redirect_uris = settings.IFTTT_REDIRECT_URI
    # The provider hashes secrets on save; only re-set it when it no longer matches the setting, or
    # when it is stored with the slow password hash (see protocol/hashers.py).
    if (
        not application.pk
        or not _secret_matches(application, settings.IFTTT_CLIENT_SECRET)
        or (application.hash_client_secret and not _secret_hashed_fast(application.client_secret))
    ):
        application.client_secret = _client_secret_hash(settings.IFTTT_CLIENT_SECRET)
    application.skip_authorization = False
    application.algorithm = ""
    application.save()
    return application


def _client_secret_hash(secret: str) -> str:
    """The secret hashed for storage with ClientSecretHasher, or as given (the provider then hashes it
    with the default password hasher) where that hasher is not configured."""
    try:
        return make_password(secret, hasher=ClientSecretHasher.algorithm)
    except ValueError:
        return secret


def _secret_hashed_fast(stored: str) -> bool:
    try:
        hasher = get_hasher(ClientSecretHasher.algorithm)
    except ValueError:
        return True  # not configured: whatever the provider stored is as good as it gets
    return stored.startswith(f"{hasher.algorithm}$")


def _secret_matches(application: Application, secret: str) -> bool:
    from django.contrib.auth.hashers import check_password

    stored = application.client_secret
    return check_password(secret, stored) if application.hash_client_secret else stored == secret


def ifttt_token_issue(*, user: Any) -> AccessToken:
    """A fresh access/refresh token pair for IFTTT on behalf of `user` (used by test/setup).

    The rows hold digests (protocol/tokens.py); the returned instance carries the bearer string in
    `token`, the one moment it is known. Saving the instance again stores the digest again.
    """
    application = ifttt_application_ensure()
    oauth = settings.OAUTH2_PROVIDER
    raw = secrets.token_urlsafe(32)
    access = AccessToken.objects.create(
        user=user,
        application=application,
        token=raw,
        expires=timezone.now() + timedelta(seconds=oauth["ACCESS_TOKEN_EXPIRE_SECONDS"]),
        scope="ifttt",
    )
    RefreshToken.objects.create(
        user=user,
        application=application,
        token=secrets.token_urlsafe(32),
        access_token=access,
        token_family=uuid.uuid4(),
    )
    metrics.oauth_tokens.labels("issued").inc()
    access.token = raw
    return access


def ifttt_test_token_issue(*, user: Any) -> AccessToken:
    """A fresh IFTTT token for the endpoint-test account, whose tokens from earlier days are removed.

    Only digests are stored, so an earlier token cannot be handed out again; a test run lasts minutes,
    so the tokens of earlier runs (older than a day) go, and concurrent runs keep theirs.
    """
    day_ago = timezone.now() - timedelta(days=1)
    _tokens_delete(
        access_tokens=AccessToken.objects.filter(user=user, created__lt=day_ago),
        refresh_tokens=RefreshToken.objects.filter(user=user, created__lt=day_ago),
    )
    return ifttt_token_issue(user=user)


def _tokens_delete(*, access_tokens: QuerySet[AccessToken], refresh_tokens: QuerySet[RefreshToken]) -> int:
    """Delete access tokens, then refresh tokens; the number of tokens removed.

    Deleted, not marked revoked: a refresh token marked revoked is still accepted for
    REFRESH_TOKEN_GRACE_PERIOD_SECONDS (rotation's safety net), which must not apply to a revocation.
    """
    refresh_ids = list(refresh_tokens.values_list("id", flat=True))
    related = Q(refresh_token__in=refresh_ids) | Q(source_refresh_token__in=refresh_ids)
    access_deleted, _ = AccessToken.objects.filter(Q(pk__in=access_tokens.values("pk")) | related).delete()
    refresh_deleted, _ = RefreshToken.objects.filter(id__in=refresh_ids).delete()
    return access_deleted + refresh_deleted


@transaction.atomic
def oauth_token_revoke(*, token: str, application: Application) -> int:
    """Revoke an access or refresh token of `application` and every token of the same grant.

    A token of another application, or an unknown one, is left alone (RFC 7009 answers 200 either
    way). Returns the number of tokens removed.
    """
    access = AccessToken.objects.filter(token_checksum=token_digest(token), application=application).first()
    if access is not None:
        refresh = (
            RefreshToken.objects.filter(access_token=access).first()
            or RefreshToken.objects.filter(pk=access.source_refresh_token_id).first()
        )
    else:
        refresh = RefreshToken.objects.filter(token=token_stored(token), application=application).first()
    if access is None and refresh is None:
        return 0
    refresh_tokens = RefreshToken.objects.none()
    if refresh is not None:
        # Rotation keeps one family id across a grant's refresh tokens: revoke all its generations.
        refresh_tokens = (
            RefreshToken.objects.filter(application=application, token_family=refresh.token_family)
            if refresh.token_family
            else RefreshToken.objects.filter(pk=refresh.pk)
        )
    access_tokens = AccessToken.objects.filter(pk=access.pk) if access else AccessToken.objects.none()
    metrics.oauth_tokens.labels("revoked").inc()
    return _tokens_delete(access_tokens=access_tokens, refresh_tokens=refresh_tokens)


@transaction.atomic
def oauth_code_tokens_revoke(*, code: str, application: Application) -> int:
    """Revoke every token issued through the authorization code stored as `code` (a digest).

    A code presented twice may have been stolen (RFC 6749 §4.1.2): whatever its first exchange
    started, every generation of that grant's tokens, stops working.
    """
    families = [
        family
        for family in SpentAuthorizationCode.objects.filter(code=code).values_list("token_family", flat=True)
        if family is not None
    ]
    if not families:
        return 0
    metrics.oauth_tokens.labels("revoked").inc()
    return _tokens_delete(
        access_tokens=AccessToken.objects.none(),
        refresh_tokens=RefreshToken.objects.filter(application=application, token_family__in=families),
    )


@transaction.atomic
def ifttt_access_revoke(*, user: Any, by: str = DisconnectedBy.USER) -> int:
    """Disconnect IFTTT from `user`'s account: every access and refresh token, and pending codes.

    IFTTT's next call with any of them gets a 401 and its refresh attempts get `invalid_grant`, so
    the user's Applets stop until they connect again. Returns the number of tokens removed.
    """
    application = Application.objects.filter(client_id=settings.IFTTT_CLIENT_ID).first()
    if application is None:
        return 0
    Grant.objects.filter(user=user, application=application).delete()
    user.ifttt_disconnected_at = timezone.now()
    user.ifttt_disconnected_by = by
    user.save(update_fields=["ifttt_disconnected_at", "ifttt_disconnected_by"])
    metrics.oauth_tokens.labels("revoked").inc()
    return _tokens_delete(
        access_tokens=AccessToken.objects.filter(user=user, application=application),
        refresh_tokens=RefreshToken.objects.filter(user=user, application=application),
    )


def oauth_rotated_tokens_prune() -> int:
    """Delete refresh tokens that were rotated out longer ago than the grace period.

    Refresh tokens never expire by time (IFTTT's rule), so the provider's own cleanup never removes
    the old ones a rotation leaves behind; past the grace period they can no longer be used.
    """
    grace = timedelta(seconds=settings.OAUTH2_PROVIDER["REFRESH_TOKEN_GRACE_PERIOD_SECONDS"])
    deleted, _ = RefreshToken.objects.filter(revoked__lt=timezone.now() - grace).delete()
    return deleted
