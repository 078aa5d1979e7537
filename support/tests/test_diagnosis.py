"""The diagnosis page answers "why didn't my Applet run?" in plain words, and the health page sums up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken

from conftest import IftttClient
from devices.models import EventSource
from devices.services import device_switch
from protocol.models import ApiCall
from support.selectors import diagnosis_get, health_get


def _page(client: Client, **query: str) -> str:
    response = client.get(reverse("support:diagnosis"), query)
    assert response.status_code == 200, response.content.decode()[:500]
    return response.content.decode()


def test_an_event_ifttt_was_shown_is_reported_as_delivered(client: Client, support_client: Client, life: Any) -> None:
    event = device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)
    assert event is not None
    ifttt = IftttClient(Client(), life.token)
    body = {"trigger_identity": "ti-lamp-on", "triggerFields": {"device": life.lamp.public_id}}
    assert ifttt.post("/ifttt/v1/triggers/device_switched_on", body).status_code == 200
    page = _page(support_client, identity="ti-lamp-on")
    assert "was returned to IFTTT in the poll of" in page
    assert event.public_id in page
    assert "<svg" in page and "IFTTT polls" in page


def test_events_after_the_last_poll_are_waiting(support_client: Client, life: Any) -> None:
    device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)
    d = diagnosis_get(identity="ti-lamp-on")
    assert d is not None
    assert any("have not been returned to IFTTT yet" in line for line in d.conclusions)


def test_a_threshold_never_crossed_is_said_in_plain_words(support_client: Client, life: Any) -> None:
    page = _page(support_client, user=life.user.email, trigger="temperature_rises_above")
    assert "No event matched: the threshold of 25 °C was never crossed" in page
    assert "the highest of the last 3 readings was 21.0 °C" in page
    assert "IFTTT has not polled this identity since" in page


def test_a_revoked_token_is_explained(support_client: Client, life: Any) -> None:
    ifttt = IftttClient(Client(), life.token)
    body = {"trigger_identity": "ti-lamp-on", "triggerFields": {"device": life.lamp.public_id}}
    assert ifttt.post("/ifttt/v1/triggers/device_switched_on", body).status_code == 200
    AccessToken.objects.filter(user=life.user).delete()
    assert ifttt.post("/ifttt/v1/triggers/device_switched_on", body).status_code == 401
    page = _page(support_client, identity="ti-lamp-on")
    assert "have been refused (401) since" in page
    assert "The user has no IFTTT token" in page


def test_disconnect_from_support_gives_the_revocation_date(support_client: Client, life: Any) -> None:
    support_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "disconnect_ifttt", "_selected_action": [str(life.user.pk)], "index": "0"},
    )
    page = _page(support_client, identity="ti-lamp-on")
    assert "The token was revoked on" in page
    assert "by support" in page


def test_the_users_own_disconnect_is_explained(support_client: Client, life: Any) -> None:
    owner = Client()
    owner.force_login(life.user)
    assert owner.post(reverse("account-ifttt-disconnect")).status_code == 303
    page = _page(support_client, identity="ti-lamp-on")
    assert "The token was revoked on" in page
    assert "by the user, on their account page" in page


def test_unknown_identity_and_user_get_clear_messages(support_client: Client, life: Any) -> None:
    response = support_client.get(reverse("support:diagnosis"), {"identity": "nope"})
    assert response.status_code == 404
    assert "No trigger identity “nope” was ever polled" in response.content.decode()
    response = support_client.get(
        reverse("support:diagnosis"), {"user": "ghost@example.com", "trigger": "motion_detected"}
    )
    assert response.status_code == 404
    assert "No user matches “ghost@example.com”" in response.content.decode()
    page = _page(support_client, user=life.user.username, trigger="motion_detected")
    assert "IFTTT has never polled the trigger “motion_detected” for this user" in page


def test_health_counts_calls_errors_and_refused_users(support_client: Client, life: Any) -> None:
    ApiCall.objects.create(
        method="POST",
        path="/ifttt/v1/triggers/x",
        endpoint="trigger-poll",
        status_code=401,
        duration_ms=1,
        user=life.user,
        error_message="revoked",
    )
    ApiCall.objects.create(
        method="POST", path="/ifttt/v1/actions/x", endpoint="action-run", status_code=500, duration_ms=1
    )
    old = ApiCall.objects.create(
        method="GET", path="/ifttt/v1/status", endpoint="status", status_code=200, duration_ms=1
    )
    ApiCall.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    health = health_get()
    by_endpoint = {e.endpoint: e for e in health.endpoints}
    assert by_endpoint["trigger-poll"].calls == 2 and by_endpoint["trigger-poll"].errors == 1
    assert by_endpoint["action-run"].server_errors == 1
    assert "status" not in by_endpoint  # older than 24 hours
    assert [row["user"] for row in health.refused_users] == [life.user.pk]
    page = support_client.get(reverse("support:health")).content.decode()
    assert "Users whose tokens IFTTT failed to use" in page and "carol@example.com" in page
    assert page.count("<svg") >= 2
