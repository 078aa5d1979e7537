"""What a stolen database copy, a stolen authorization code or a sloppy client can and cannot do.

Tokens and codes are stored as digests; a code is good for one exchange, and presenting it again
revokes what it issued; PKCE is S256 only; the token request must repeat the redirect URI.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from django.db import connection
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from protocol.access import ifttt_token_issue

from .conftest import STATE, TokenEndpoint, authorize_query, body, code_for, consent, redirect_params


def _connect(signed_in: Any, token_endpoint: TokenEndpoint) -> dict[str, Any]:
    client, _ = signed_in
    response = token_endpoint.exchange(code_for(client))
    assert response.status_code == 200, response.content
    return body(response)


def token_digest(raw: str) -> str:
    """The provider's `token_checksum` of a bearer string."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _every_stored_value() -> str:
    """Every text column of the provider's token tables, as a database dump would show them."""
    values: list[str] = []
    for model in (AccessToken, RefreshToken, Grant):
        for row in model.objects.values():
            values.extend(str(v) for v in row.values())
    return " ".join(values)


def test_the_database_holds_no_usable_token_or_code(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    tokens = _connect(signed_in, token_endpoint)
    refreshed = body(token_endpoint.refresh(tokens["refresh_token"]))
    pending_code = code_for(client)  # issued, not yet exchanged
    issued = ifttt_token_issue(user=signed_in[1])

    stored = _every_stored_value()
    for secret in (
        refreshed["access_token"],
        refreshed["refresh_token"],
        tokens["refresh_token"],
        pending_code,
        issued.token,
    ):
        assert secret not in stored

    # What a stolen copy holds is not accepted as a token.
    row = AccessToken.objects.get(token_checksum=token_digest(refreshed["access_token"]))
    for leaked in (row.token, row.token_checksum):
        assert token_endpoint.user_info(leaked).status_code == 401
    leaked_refresh = RefreshToken.objects.get(access_token=row).token
    assert token_endpoint.refresh(leaked_refresh).status_code == 400
    # The real ones still work, and are found by the bearer string's SHA-256 (the provider's own
    # `token_checksum`), in one indexed statement.
    assert token_endpoint.user_info(refreshed["access_token"]).status_code == 200
    assert row.token_checksum == hashlib.sha256(refreshed["access_token"].encode()).hexdigest()
    assert token_endpoint.exchange(pending_code).status_code == 200


def test_a_token_saved_again_keeps_working_and_stays_a_digest(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    tokens = _connect(signed_in, token_endpoint)
    row = AccessToken.objects.get(token_checksum=token_digest(tokens["access_token"]))
    row.scope = "ifttt"
    row.save()  # e.g. an edit in the admin
    assert token_endpoint.user_info(tokens["access_token"]).status_code == 200
    assert tokens["access_token"] not in _every_stored_value()


def test_existing_plain_tokens_are_hashed_by_the_migration(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    import importlib

    from django.apps import apps

    tokens = _connect(signed_in, token_endpoint)
    # A row as the previous release wrote it: the bearer string itself.
    raw_access, raw_refresh = secrets.token_urlsafe(20), secrets.token_urlsafe(20)
    row = AccessToken.objects.get(token_checksum=token_digest(tokens["access_token"]))
    AccessToken.objects.filter(pk=row.pk).update(token=raw_access, token_checksum=token_digest(raw_access))
    RefreshToken.objects.filter(access_token=row).update(token=raw_refresh)
    assert raw_access in _every_stored_value()

    migration = importlib.import_module("protocol.migrations.0005_oauth_tokens_stored_as_digests")
    migration.forwards(apps, connection.schema_editor())
    migration.forwards(apps, connection.schema_editor())  # a second run changes nothing

    assert raw_access not in _every_stored_value() and raw_refresh not in _every_stored_value()
    assert token_endpoint.user_info(raw_access).status_code == 200
    assert token_endpoint.refresh(raw_refresh).status_code == 200


def test_revocation_is_immediate_with_digests(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    tokens = _connect(signed_in, token_endpoint)
    assert token_endpoint.revoke(tokens["refresh_token"]).status_code == 200
    assert token_endpoint.user_info(tokens["access_token"]).status_code == 401
    assert body(token_endpoint.refresh(tokens["refresh_token"]))["error"] == "invalid_grant"


def test_a_reused_code_is_refused_and_revokes_the_tokens_it_issued(
    signed_in: Any, token_endpoint: TokenEndpoint
) -> None:
    client, _ = signed_in
    code = code_for(client)
    tokens = body(token_endpoint.exchange(code))
    refreshed = body(token_endpoint.refresh(tokens["refresh_token"]))
    assert token_endpoint.user_info(refreshed["access_token"]).status_code == 200

    again = token_endpoint.exchange(code)
    assert again.status_code == 400
    assert body(again)["error"] == "invalid_grant"
    # Every generation of the grant the code started is gone.
    assert token_endpoint.user_info(refreshed["access_token"]).status_code == 401
    assert body(token_endpoint.refresh(refreshed["refresh_token"]))["error"] == "invalid_grant"


def test_an_unknown_code_revokes_nothing(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    tokens = _connect(signed_in, token_endpoint)
    assert token_endpoint.exchange("not-a-code").status_code == 400
    assert token_endpoint.user_info(tokens["access_token"]).status_code == 200


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def test_plain_pkce_is_refused(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    verifier = secrets.token_urlsafe(48)
    for method in ("plain", None):  # oauthlib takes a challenge without a method as plain
        response = client.get(
            f"/oauth/authorize/?{authorize_query(code_challenge=verifier, code_challenge_method=method)}"
        )
        params = redirect_params(response)
        assert params["error"] == "invalid_request"
        assert params["state"] == STATE
        assert "code" not in params


def test_s256_pkce_works_and_a_wrong_verifier_uses_the_code_up(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    verifier = secrets.token_urlsafe(48)
    pkce = {"code_challenge": _s256(verifier), "code_challenge_method": "S256"}

    code = redirect_params(consent(client, **pkce))["code"]
    assert token_endpoint.exchange(code, code_verifier=verifier).status_code == 200

    code = redirect_params(consent(client, **pkce))["code"]
    wrong = token_endpoint.exchange(code, code_verifier=secrets.token_urlsafe(48))
    assert body(wrong)["error"] == "invalid_grant"
    # The right verifier comes too late: the failed exchange spent the code.
    late = token_endpoint.exchange(code, code_verifier=verifier)
    assert late.status_code == 400
    assert body(late)["error"] == "invalid_grant"


def test_the_token_request_must_repeat_the_redirect_uri(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, _ = signed_in
    code = code_for(client)
    data = {"grant_type": "authorization_code", "code": code, **token_endpoint.credentials()}
    response = token_endpoint.post("/oauth/token/", data)
    assert response.status_code == 400
    assert body(response)["error"] == "invalid_request"
    assert "access_token" not in body(response)
    # And that attempt used the code up.
    assert token_endpoint.exchange(code).status_code == 400


def test_token_events_are_counted(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    from core import metrics

    def count(event: str) -> float:
        return metrics.oauth_tokens.labels(event)._value.get()

    before = {event: count(event) for event in ("issued", "refreshed", "revoked")}
    tokens = _connect(signed_in, token_endpoint)
    refreshed = body(token_endpoint.refresh(tokens["refresh_token"]))
    token_endpoint.revoke(refreshed["access_token"])
    assert {event: count(event) - before[event] for event in before} == {"issued": 1, "refreshed": 1, "revoked": 1}
