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
    assert "<svg" in page and "IFTTT&#x27;s polls" in page


def test_events_after_the_last_poll_are_waiting(support_client: Client, life: Any) -> None:
    device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)
    d = diagnosis_get(identity="ti-lamp-on")
    assert d is not None
    assert "1 matching event has not been returned to IFTTT yet" in " ".join(d.conclusions)


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
    assert "This person has no IFTTT token" in page


def test_disconnect_from_support_gives_the_revocation_date(support_client: Client, life: Any) -> None:
    support_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "disconnect_ifttt", "_selected_action": [str(life.user.pk)], "index": "0"},
    )
    page = _page(support_client, identity="ti-lamp-on")
    assert "IFTTT&#x27;s access was revoked on" in page
    assert "by support" in page


def test_the_users_own_disconnect_is_explained(support_client: Client, life: Any) -> None:
    owner = Client()
    owner.force_login(life.user)
    assert owner.post(reverse("account-ifttt-disconnect")).status_code == 303
    page = _page(support_client, identity="ti-lamp-on")
    assert "IFTTT&#x27;s access was revoked on" in page
    assert "by the user, on their account page" in page


def test_unknown_identity_and_user_get_clear_messages(support_client: Client, life: Any) -> None:
    response = support_client.get(reverse("support:diagnosis"), {"identity": "nope"})
    assert response.status_code == 404
    assert "IFTTT never polled a trigger identity “nope”" in response.content.decode()
    response = support_client.get(
        reverse("support:diagnosis"), {"user": "ghost@example.com", "trigger": "motion_detected"}
    )
    assert response.status_code == 404
    assert "No one matches “ghost@example.com”" in response.content.decode()


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
    assert by_endpoint["trigger-poll"].calls == 2 and by_endpoint["trigger-poll"].refused == 1
    assert by_endpoint["trigger-poll"].failed == 0
    assert by_endpoint["action-run"].failed == 1
    assert "status" not in by_endpoint  # older than 24 hours
    assert [row["user"] for row in health.refused_users] == [life.user.pk]
    page = support_client.get(reverse("support:health")).content.decode()
    assert "People whose tokens IFTTT failed to use" in page and "carol@example.com" in page
    assert 'id="hourly-chart"' in page


# --- Each conclusion is right for its case ---------------------------------------------------------


def _conclusions(**query: Any) -> str:
    d = diagnosis_get(**query)
    assert d is not None
    return " ".join(d.conclusions)


def test_a_trigger_never_polled_says_so_and_nothing_about_devices(life: Any) -> None:
    text = _conclusions(user=life.user, trigger_slug="motion_detected")
    assert "IFTTT has never polled the trigger “Motion detected” for this person" in text
    assert "no longer in this account" not in text
    assert "No event matched" not in text


def test_a_device_removed_from_the_account_asks_for_the_applet_to_be_edited(life: Any) -> None:
    life.lamp.delete()
    text = _conclusions(identity="ti-lamp-on")
    assert "The device chosen in the Applet is no longer in this account" in text
    assert "No event matched" not in text  # the missing device is the reason, not the events


def test_an_offline_device_is_named(life: Any) -> None:
    life.lamp.online = False
    life.lamp.save()
    assert "Desk lamp is marked offline" in _conclusions(identity="ti-lamp-on")


def test_an_identity_ifttt_deleted_says_the_applet_was_turned_off(life: Any) -> None:
    life.identity.deleted_at = timezone.now()
    life.identity.save()
    text = _conclusions(identity="ti-lamp-on")
    assert "IFTTT deleted this trigger identity on" in text
    assert "has not polled" not in text


def test_an_identity_never_polled_since_created(life: Any) -> None:
    assert life.identity.last_polled_at is None
    assert "IFTTT has not polled this identity since it was created." in _conclusions(identity="ti-lamp-on")


def test_no_matching_event_says_there_was_nothing_to_run_on(life: Any) -> None:
    assert "No event matched this trigger's fields yet" in _conclusions(identity="ti-lamp-on")


def test_times_are_written_one_way_with_their_zone(life: Any) -> None:
    text = _conclusions(user=life.user, trigger_slug="temperature_rises_above")
    polled = timezone.localtime(life.hot_identity.last_polled_at)
    assert f"since {polled:%-d %b %Y, %H:%M} UTC" in text


def test_the_empty_form_says_what_to_enter(support_client: Client) -> None:
    page = _page(support_client)
    assert "Enter the person who wrote in: their email, username or id is enough" in page


def test_a_person_alone_shows_every_applet_with_names_and_a_conclusion_each(support_client: Client, life: Any) -> None:
    page = _page(support_client, user=life.user.email)
    assert "Device switched on" in page or "switched on" in page.lower()
    # Field values as a person reads them: the device's name and room, never its id.
    assert "Desk lamp (Office)" in page and "Hall thermostat (Hall)" in page
    assert life.lamp.public_id not in page.split('id="applets"')[1].split("</div>")[0].replace(
        f'data-identity="{life.identity.identity}"', ""
    )
    assert page.count('class="applet') == 2
    assert "No event matched: the threshold of 25 °C was never crossed" in page
    assert "IFTTT has not polled this identity since it was created." in page
    assert "Desk lamp is offline" in page  # the skipped action run, with its reason


def test_a_person_without_applets_is_told_apart(support_client: Client, make_user: Any) -> None:
    dave = make_user("dave")
    page = _page(support_client, user="dave")
    assert "IFTTT has never polled a trigger for this person" in page
    assert "This person has no IFTTT token" in page
    assert dave.email in page


def test_health_does_not_count_a_callers_404_as_an_error(support_client: Client, life: Any) -> None:
    ApiCall.objects.create(
        method="POST",
        path="/ifttt/v1/triggers/x/fields/y/options",
        endpoint="field-options",
        status_code=200,
        duration_ms=1,
    )
    ApiCall.objects.create(
        method="POST",
        path="/ifttt/v1/triggers/x/fields/z/options",
        endpoint="field-options",
        status_code=404,
        duration_ms=1,
    )
    options = {e.endpoint: e for e in health_get().endpoints}["field-options"]
    assert (options.calls, options.refused, options.failed, options.error_rate) == (2, 1, 0, 0.0)


def test_health_tells_a_wrong_service_key_from_an_unknown_token(support_client: Client, life: Any) -> None:
    for _ in range(2):
        ApiCall.objects.create(
            method="GET",
            path="/ifttt/v1/status",
            endpoint="status",
            status_code=401,
            duration_ms=1,
            error_message="The IFTTT-Service-Key is not this service's key.",
        )
    health = health_get()
    assert (health.refused_service_key, health.refused_unknown) == (2, 0)
    page = support_client.get(reverse("support:health")).content.decode()
    assert "2 calls (status or test setup) were refused for a missing or wrong service key" in page
    assert "never saw work" not in page


def test_the_hourly_chart_has_axes_a_legend_and_plain_hours(support_client: Client, life: Any) -> None:
    page = support_client.get(reverse("support:health")).content.decode()
    chart = page.split('id="hourly-chart"')[1].split("</figure>")[0]
    assert 'class="chart-y-axis"' in chart and "Calls</div>" in chart and "Hour (UTC)" in chart
    assert "Answered</li>" in chart and "Failed (5xx: our fault)</li>" in chart
    assert "1 calls" not in page and "a.m." not in page
