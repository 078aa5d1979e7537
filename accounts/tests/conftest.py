"""Fixtures for the OAuth flow and the account page: IFTTT's application and the steps of the dance."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.test import Client

from protocol.access import ifttt_application_ensure

CLIENT_SECRET = "ifttt-test-client-secret"
STATE = "a00caec8dbd08e50"
PASSWORD = "correct-horse-battery"  # what the root conftest's make_user sets
# Ports the browser tests' live server may use.


@pytest.fixture
def ifttt_app(db: Any, settings: Any) -> Any:
    settings.IFTTT_CLIENT_SECRET = CLIENT_SECRET
    return ifttt_application_ensure()


def authorize_query(**overrides: str) -> str:
    params = {
        "client_id": settings.IFTTT_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": settings.IFTTT_REDIRECT_URI,
        "scope": "ifttt",
        "state": STATE,
    }
    params.update(overrides)
    return urlencode({k: v for k, v in params.items() if v is not None})


def authorize_url(**overrides: str) -> str:
    return f"/oauth/authorize/?{authorize_query(**overrides)}"


def consent(client: Client, *, allow: bool = True, **overrides: str) -> Any:
    """Open the consent page as the signed-in user and press Allow or Deny; the redirect response."""
    page = client.get(authorize_url(**overrides))
    assert page.status_code == 200, page.content.decode()[:500]
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    if allow:
        form["allow"] = "Allow"
    return client.post(authorize_url(**overrides), form)


def redirect_params(response: Any) -> dict[str, str]:
    assert response.status_code == 302, response.content.decode()[:500]
    location = response["Location"]
    assert location.split("?")[0] == settings.IFTTT_REDIRECT_URI, location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_for(client: Client) -> str:
    params = redirect_params(consent(client))
    assert params["state"] == STATE
    return params["code"]


class TokenEndpoint:
    """IFTTT's server talking to /oauth/token/ and /oauth/revoke_token/: its own client, no cookies."""

    def __init__(self) -> None:
        self.client = Client()

    def post(self, path: str, data: dict[str, str], *, basic: tuple[str, str] | None = None) -> Any:
        headers = {}
        if basic:
            raw = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            headers["HTTP_AUTHORIZATION"] = f"Basic {raw}"
        return self.client.post(path, urlencode(data), content_type="application/x-www-form-urlencoded", **headers)

    def credentials(self, secret: str = CLIENT_SECRET) -> dict[str, str]:
        return {"client_id": settings.IFTTT_CLIENT_ID, "client_secret": secret}

    def exchange(self, code: str, **extra: str) -> Any:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": settings.IFTTT_REDIRECT_URI}
        return self.post("/oauth/token/", {**data, **self.credentials(), **extra})

    def refresh(self, refresh_token: str, **extra: str) -> Any:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self.post("/oauth/token/", {**data, **self.credentials(), **extra})

    def revoke(self, token: str, **extra: str) -> Any:
        return self.post("/oauth/revoke_token/", {"token": token, **self.credentials(), **extra})

    def user_info(self, access_token: str) -> Any:
        return self.client.get("/ifttt/v1/user/info", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def body(response: Any) -> dict[str, Any]:
    return json.loads(response.content)


@pytest.fixture
def token_endpoint(ifttt_app: Any) -> TokenEndpoint:
    return TokenEndpoint()


@pytest.fixture
def signed_in(client: Client, make_user: Any) -> tuple[Client, Any]:
    user = make_user("alice", first_name="Alice", last_name="Example")
    client.force_login(user)
    return client, user


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    # Passwords and client secrets are hashed on every sign-in and token call; the real hasher's
    # deliberate slowness would only slow the suite, not test anything here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "protocol.hashers.ClientSecretHasher"]
