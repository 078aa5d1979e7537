"""What every page a person sees promises: it cannot be framed, loads nothing from elsewhere, works
without JavaScript and on a phone; and `setup_ifttt` registers IFTTT exactly as IFTTT expects."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from oauth2_provider.models import Application

from .conftest import CLIENT_SECRET, TokenEndpoint, authorize_url, code_for

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def _pages(client: Client) -> dict[str, Any]:
    anonymous = Client()
    return {
        "login": anonymous.get("/accounts/login/"),
        "login for IFTTT": anonymous.get(f"/accounts/login/?next={authorize_url()}"),
        "consent": client.get(authorize_url()),
        "consent error": client.get(authorize_url(redirect_uri="https://evil.example/")),
        "account": client.get("/account/"),
    }


@pytest.mark.parametrize("name", ["login", "login for IFTTT", "consent", "consent error", "account"])
def test_pages_cannot_be_framed_and_load_nothing_external(signed_in: Any, ifttt_app: Any, name: str) -> None:
    client, _ = signed_in
    response = _pages(client)[name]
    assert response.status_code in (200, 400)
    html = response.content.decode()
    assert response["X-Frame-Options"] == "DENY"
    policy = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # no script may run at all
    assert "<script" not in html
    assert " style=" not in html  # inline styles would be blocked by the policy
    assert not EXTERNAL.findall(html), EXTERNAL.findall(html)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_the_consent_page_may_send_the_person_back_to_ifttt(signed_in: Any, ifttt_app: Any) -> None:
    client, _ = signed_in
    policy = client.get(authorize_url())["Content-Security-Policy"]
    assert "form-action 'self' https://ifttt.com" in policy


def test_not_you_signs_out_and_comes_back_to_the_consent_flow(signed_in: Any, ifttt_app: Any) -> None:
    client, _ = signed_in
    start = authorize_url()
    html = client.get(start).content.decode()
    assert 'action="/accounts/logout/"' in html
    response = client.post("/accounts/logout/", {"next": start})
    assert response["Location"] == start
    response = client.get(start)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_other_pages_keep_their_own_policy(client: Client) -> None:
    assert "Content-Security-Policy" not in client.get("/ifttt/v1/status")


def test_setup_ifttt_registers_ifttt_exactly_and_is_idempotent(db: Any, settings: Any) -> None:
    settings.IFTTT_CLIENT_SECRET = CLIENT_SECRET
    out = StringIO()
    call_command("setup_ifttt", stdout=out)
    call_command("setup_ifttt", stdout=out)
    application = Application.objects.get()
    assert application.client_id == settings.IFTTT_CLIENT_ID
    assert application.redirect_uris == f"https://ifttt.com/channels/{settings.IFTTT_SERVICE_SLUG}/authorize"
    assert application.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert application.client_type == Application.CLIENT_CONFIDENTIAL
    assert not application.skip_authorization
    assert application.client_secret != CLIENT_SECRET  # stored hashed
    assert "redirect URI https://ifttt.com/channels/" in out.getvalue()


def test_setup_ifttt_picks_up_a_new_secret(signed_in: Any, settings: Any) -> None:
    client, _ = signed_in
    settings.IFTTT_CLIENT_SECRET = CLIENT_SECRET
    call_command("setup_ifttt", stdout=StringIO())
    settings.IFTTT_CLIENT_SECRET = "rotated-secret"
    call_command("setup_ifttt", stdout=StringIO())
    endpoint = TokenEndpoint()
    code = code_for(client)
    assert endpoint.exchange(code, client_secret=CLIENT_SECRET).status_code == 401
    assert endpoint.exchange(code, client_secret="rotated-secret").status_code == 200
    assert Application.objects.filter(client_id=settings.IFTTT_CLIENT_ID).count() == 1
