"""IFTTT's authentication, end to end through HTTP, as ifttt-protocol.md section 10 describes it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.test import Client
from oauth2_provider.models import Application

from .conftest import PASSWORD, STATE, TokenEndpoint, authorize_url, body, code_for, consent, redirect_params


def test_the_whole_dance(client: Client, make_user: Any, token_endpoint: TokenEndpoint) -> None:
    user = make_user("alice", first_name="Alice", last_name="Example")

    # IFTTT sends the person to the authorization URL; they are not signed in yet.
    start = authorize_url()
    response = client.get(start)
    assert response.status_code == 302
    login_url = response["Location"]
    assert login_url == f"/accounts/login/?next={quote(start, safe='/')}"

    page = client.get(login_url)
    assert "Sign in to connect IFTTT" in page.content.decode()

    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": start})
    assert response.status_code == 302
    assert response["Location"] == start

    page = client.get(start)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Connect IFTTT to your Smart Home account?" in html
    assert "Alice Example" in html and "alice@example.com" in html and "Not you?" in html
    assert "Switch your devices on and off." in html
    assert "Change thermostat temperatures and light colours." in html

    params = redirect_params(consent(client))
    assert params["state"] == STATE
    code = params["code"]

    # IFTTT's server exchanges the code with its credentials in the form body, and no PKCE.
    response = token_endpoint.exchange(code)
    assert response.status_code == 200, response.content
    tokens = body(response)
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"] and tokens["refresh_token"]

    info = token_endpoint.user_info(tokens["access_token"])
    assert info.status_code == 200
    assert body(info)["data"]["id"] == user.public_id
    assert body(info)["data"]["name"] == "Alice Example"

    # Refresh: a new pair, and the old refresh token still works (IFTTT may have lost the answer).
    response = token_endpoint.refresh(tokens["refresh_token"])
    assert response.status_code == 200, response.content
    refreshed = body(response)
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]

    retried = token_endpoint.refresh(tokens["refresh_token"])
    assert retried.status_code == 200, retried.content
    # Tokens are stored as digests, so the retry gets a second pair of the same grant; both work.
    assert token_endpoint.user_info(body(retried)["access_token"]).status_code == 200
    assert token_endpoint.user_info(refreshed["access_token"]).status_code == 200

    # Revocation: the very next call with the token is refused, and the grant cannot be refreshed.
    assert token_endpoint.revoke(refreshed["access_token"]).status_code == 200
    denied = token_endpoint.user_info(refreshed["access_token"])
    assert denied.status_code == 401
    assert denied.json()["errors"][0]["message"]
    assert token_endpoint.user_info(body(retried)["access_token"]).status_code == 401
    for old in (refreshed["refresh_token"], tokens["refresh_token"], body(retried)["refresh_token"]):
        response = token_endpoint.refresh(old)
        assert response.status_code == 400
        assert body(response)["error"] == "invalid_grant"


def test_deny_sends_the_person_back_to_ifttt_with_access_denied(signed_in: Any, ifttt_app: Any) -> None:
    client, _ = signed_in
    params = redirect_params(consent(client, allow=False))
    assert params == {"error": "access_denied", "state": STATE}


def test_a_redirect_uri_that_is_not_registered_is_never_redirected_to(signed_in: Any, ifttt_app: Any) -> None:
    client, _ = signed_in
    for uri in (
        "https://evil.example/steal",
        f"{settings.IFTTT_REDIRECT_URI}?extra=1",
        settings.IFTTT_REDIRECT_URI.replace("https://", "http://"),
        settings.IFTTT_REDIRECT_URI + "/",
    ):
        response = client.get(authorize_url(redirect_uri=uri))
        assert response.status_code == 400, uri
        assert "Location" not in response
        assert "This link cannot be used to connect your account" in response.content.decode()


def test_deny_with_a_tampered_redirect_uri_is_not_redirected(signed_in: Any, ifttt_app: Any) -> None:
    client, _ = signed_in
    page = client.get(authorize_url())
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    form["redirect_uri"] = "https://evil.example/steal"
    response = client.post(authorize_url(), form)
    assert response.status_code == 400
    assert "Location" not in response


def test_allow_with_a_tampered_redirect_uri_is_not_redirected(signed_in: Any, ifttt_app: Any) -> None:
    client, _ = signed_in
    page = client.get(authorize_url())
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    form.update(redirect_uri="https://evil.example/steal", allow="Allow")
    response = client.post(authorize_url(), form)
    assert response.status_code == 400
    assert "Location" not in response


def test_client_credentials_by_http_basic(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    data = {"grant_type": "authorization_code", "code": code_for(client), "redirect_uri": settings.IFTTT_REDIRECT_URI}
    response = token_endpoint.post("/oauth/token/", data, basic=tuple(token_endpoint.credentials().values()))
    assert response.status_code == 200, response.content
    assert token_endpoint.user_info(body(response)["access_token"]).status_code == 200


def test_wrong_client_secret_is_401_invalid_client(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    code = code_for(client)
    response = token_endpoint.exchange(code, client_secret="not-the-secret")
    assert response.status_code == 401
    assert body(response)["error"] == "invalid_client"
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": settings.IFTTT_REDIRECT_URI}
    response = token_endpoint.post("/oauth/token/", data, basic=("ifttt", "not-the-secret"))
    assert response.status_code == 401
    assert body(response)["error"] == "invalid_client"
    # The code was not spent by the failed attempts.
    assert token_endpoint.exchange(code).status_code == 200


def test_bad_or_reused_code_is_400_invalid_grant(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    code = code_for(client)
    assert token_endpoint.exchange(code).status_code == 200
    for attempt in (code, "not-a-code"):
        response = token_endpoint.exchange(attempt)
        assert response.status_code == 400
        assert body(response)["error"] == "invalid_grant"
        assert attempt not in response.content.decode()


def test_bad_refresh_token_is_400_invalid_grant(token_endpoint: TokenEndpoint) -> None:
    response = token_endpoint.refresh("not-a-refresh-token")
    assert response.status_code == 400
    assert body(response)["error"] == "invalid_grant"


def test_code_exchange_with_a_different_redirect_uri_is_refused(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    response = token_endpoint.exchange(code_for(client), redirect_uri="https://evil.example/steal")
    assert response.status_code in (400, 401)
    assert "access_token" not in body(response)


def test_other_clients_must_use_pkce(signed_in: Any, ifttt_app: Any) -> None:
    client, user = signed_in
    Application.objects.create(
        name="Phone app",
        client_id="phone-app",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://phone.example/callback",
        user=user,
    )
    response = client.get(authorize_url(client_id="phone-app", redirect_uri="https://phone.example/callback"))
    assert response.status_code == 302
    assert response["Location"].startswith("https://phone.example/callback?")
    assert "error=invalid_request" in response["Location"]
    assert "code=" not in response["Location"]


def test_consent_page_needs_csrf(make_user: Any, ifttt_app: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("alice"))
    page = client.get(authorize_url())
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    response = client.post(authorize_url(), {**form, "allow": "Allow"})
    assert response.status_code == 403


def test_an_unknown_client_or_redirect_is_refused_before_sign_in(client: Client, ifttt_app: Any) -> None:
    for bad in ({"client_id": "someone-else"}, {"redirect_uri": "https://evil.example/cb"}, {"client_id": ""}):
        response = client.get(authorize_url(**bad))
        # Refused at once, not sent to the sign-in page first.
        assert response.status_code == 400, bad
        assert "This link cannot be used to connect your account" in response.content.decode()
    assert client.get(authorize_url()).status_code == 302  # a good link still asks the person to sign in
