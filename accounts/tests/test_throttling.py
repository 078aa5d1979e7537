"""Failed sign-ins are throttled per username and address, with a message saying how long to wait."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from .conftest import PASSWORD, authorize_url


def _sign_in(client: Client, password: str, *, ip: str = "203.0.113.7", username: str = "alice", **extra: str) -> Any:
    data = {"username": username, "password": password, **extra}
    return client.post("/accounts/login/", data, REMOTE_ADDR=ip)


def test_five_failures_pause_sign_in_for_fifteen_minutes(client: Client, make_user: Any) -> None:
    make_user("alice")
    for attempt in range(4):
        response = _sign_in(client, "wrong")
        assert response.status_code == 200, attempt
        assert "Your username or password is not right" in response.content.decode()

    fifth = _sign_in(client, "wrong")
    assert fifth.status_code == 429
    html = fifth.content.decode()
    assert "Too many failed sign-in attempts" in html
    assert "paused for 15 minutes" in html
    assert "UTC" in html

    # Even the right password is refused while the pause lasts.
    locked = _sign_in(client, PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_pause_is_per_username_and_address(client: Client, make_user: Any) -> None:
    make_user("alice")
    make_user("bob")
    for _ in range(5):
        _sign_in(client, "wrong")
    assert _sign_in(client, PASSWORD).status_code == 429
    # Someone else from the same address, and the same person from elsewhere, can still sign in.
    assert _sign_in(Client(), PASSWORD, username="bob").status_code == 302
    assert _sign_in(Client(), PASSWORD, ip="198.51.100.1").status_code == 302


def test_after_the_pause_the_right_password_works(client: Client, make_user: Any) -> None:
    make_user("alice")
    for _ in range(5):
        _sign_in(client, "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    response = _sign_in(client, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/account/"


def test_a_successful_sign_in_resets_the_count(client: Client, make_user: Any) -> None:
    make_user("alice")
    for _ in range(4):
        _sign_in(client, "wrong")
    assert _sign_in(client, PASSWORD).status_code == 302
    for _ in range(4):
        assert _sign_in(Client(), "wrong").status_code == 200


def test_lockout_during_ifttt_sign_in_keeps_the_way_back(client: Client, make_user: Any, ifttt_app: Any) -> None:
    make_user("alice")
    for _ in range(5):
        response = _sign_in(client, "wrong", next=authorize_url())
    html = response.content.decode()
    assert response.status_code == 429
    assert "Sign in to connect IFTTT" in html
    assert "Back to sign in" in html
