"""Writes for accounts and IFTTT's access to them."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken

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
    # The provider hashes secrets on save; only re-set it when it no longer matches the setting.
    if not application.pk or not _secret_matches(application, settings.IFTTT_CLIENT_SECRET):
        application.client_secret = settings.IFTTT_CLIENT_SECRET
    application.skip_authorization = False
    application.algorithm = ""
    application.save()
    return application


def _secret_matches(application: Application, secret: str) -> bool:
    from django.contrib.auth.hashers import check_password

    stored = application.client_secret
    return check_password(secret, stored) if application.hash_client_secret else stored == secret


def ifttt_token_issue(*, user: Any) -> AccessToken:
    """A fresh access/refresh token pair for IFTTT on behalf of `user` (used by test/setup)."""
    application = ifttt_application_ensure()
    oauth = settings.OAUTH2_PROVIDER
    access = AccessToken.objects.create(
        user=user,
        application=application,
        token=secrets.token_urlsafe(32),
        expires=timezone.now() + timedelta(seconds=oauth["ACCESS_TOKEN_EXPIRE_SECONDS"]),
        scope="ifttt",
    )
    RefreshToken.objects.create(
        user=user, application=application, token=secrets.token_urlsafe(32), access_token=access
    )
    return access


def ifttt_token_get_or_issue(*, user: Any) -> AccessToken:
    """A live IFTTT token for `user`: the newest one if any, else a fresh pair."""
    token = (
        AccessToken.objects.filter(
            user=user, application__client_id=settings.IFTTT_CLIENT_ID, expires__gt=timezone.now()
        )
        .order_by("-id")
        .first()
    )
    return token or ifttt_token_issue(user=user)
