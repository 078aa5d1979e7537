"""The account page: switching devices, the week's activity, and IFTTT's connection with Disconnect."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from accounts.selectors import account_activity_by_day
from devices.models import Device, DeviceEvent, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from protocol.access import ifttt_token_issue
from protocol.models import ApiCall

from .conftest import TokenEndpoint, body, code_for


def _lamp(user: Any, **extra: Any) -> Device:
    return device_create(owner=user, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office", **extra)


def test_the_page_needs_a_signed_in_person(client: Client) -> None:
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/account/"


def test_the_page_lists_only_the_persons_devices(signed_in: Any, make_user: Any) -> None:
    client, user = signed_in
    _lamp(user)
    device_create(owner=make_user("bob"), name="Bob's heater", kind=DeviceKind.PLUG)
    html = client.get("/account/").content.decode()
    assert "Desk lamp" in html
    assert "Bob&#x27;s heater" not in html and "Bob's heater" not in html


def test_switching_a_device_records_an_event_like_any_change(signed_in: Any) -> None:
    client, user = signed_in
    lamp = _lamp(user)
    response = client.post(f"/account/devices/{lamp.public_id}/switch/", {"on": "1"})
    assert response.status_code == 303
    # Back to the device itself, where the confirmation is shown (on a phone too).
    assert response["Location"] == f"/account/#device-{lamp.public_id}"
    lamp.refresh_from_db()
    assert lamp.is_on
    event = DeviceEvent.objects.filter(device=lamp).order_by("-id").first()
    assert event is not None
    assert (event.type, event.source) == (EventType.SWITCHED_ON, EventSource.ACCOUNT)

    page = client.get("/account/").content.decode()
    assert "Desk lamp is on." in page
    assert 'aria-pressed="true"' in page

    client.post(f"/account/devices/{lamp.public_id}/switch/", {"on": "0"})
    lamp.refresh_from_db()
    assert not lamp.is_on
    assert DeviceEvent.objects.filter(device=lamp, type=EventType.SWITCHED_OFF, source=EventSource.ACCOUNT).count() == 1


def test_someone_elses_device_cannot_be_switched(signed_in: Any, make_user: Any) -> None:
    client, _ = signed_in
    bobs = _lamp(make_user("bob"))
    response = client.post(f"/account/devices/{bobs.public_id}/switch/", {"on": "1"})
    assert response.status_code == 404
    assert "That device is not in your account" in response.content.decode()
    bobs.refresh_from_db()
    assert not bobs.is_on
    assert not DeviceEvent.objects.filter(device=bobs, source=EventSource.ACCOUNT).exists()


def test_bad_switch_requests_change_nothing(signed_in: Any) -> None:
    client, user = signed_in
    lamp = _lamp(user)
    sensor = device_create(owner=user, name="Porch sensor", kind=DeviceKind.MOTION_SENSOR)
    offline = _lamp(user, online=False)
    before = DeviceEvent.objects.count()

    response = client.post(f"/account/devices/{lamp.public_id}/switch/", {"on": "yes please"})
    assert response.status_code == 400
    assert "Choose on or off" in response.content.decode()
    assert client.post(f"/account/devices/{sensor.public_id}/switch/", {"on": "1"}).status_code == 404
    response = client.post(f"/account/devices/{offline.public_id}/switch/", {"on": "1"})
    assert response.status_code == 409
    assert "is offline" in response.content.decode()
    assert client.get(f"/account/devices/{lamp.public_id}/switch/").status_code == 405
    assert DeviceEvent.objects.count() == before


def test_the_switch_form_needs_csrf(make_user: Any) -> None:
    user = make_user("alice")
    lamp = _lamp(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"/account/devices/{lamp.public_id}/switch/", {"on": "1"}).status_code == 403
    lamp.refresh_from_db()
    assert not lamp.is_on


def test_connection_shows_since_and_last_used(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, user = signed_in
    html = client.get("/account/").content.decode()
    assert "Not connected" in html
    assert "Disconnect" not in html

    tokens = body(token_endpoint.exchange(code_for(client)))
    html = client.get("/account/").content.decode()
    today = timezone.now().strftime("%-d %b %Y")
    assert re.search(rf"connected since {today}, \d\d:\d\d UTC,\s+last used not yet", html)

    # Refreshing rotates tokens but does not move "connected since".
    token_endpoint.refresh(tokens["refresh_token"])
    last_call = timezone.now() - timedelta(days=2)
    ApiCall.objects.create(
        method="GET", path="/ifttt/v1/user/info", endpoint="user_info", status_code=200, duration_ms=3, user=user
    )
    ApiCall.objects.filter(user=user).update(created_at=last_call)
    html = client.get("/account/").content.decode()
    assert f"connected since {today}" in html
    assert f"last used {last_call:%-d %b %Y, %H:%M} UTC" in html


def test_disconnect_revokes_ifttts_access_at_once(signed_in: Any, token_endpoint: TokenEndpoint) -> None:
    client, user = signed_in
    tokens = body(token_endpoint.exchange(code_for(client)))
    test_setup_token = ifttt_token_issue(user=user)

    response = client.post("/account/connections/ifttt/disconnect/")
    assert response.status_code == 303
    page = client.get(response["Location"]).content.decode()
    assert "IFTTT is disconnected" in page
    assert "Not connected" in page

    for access in (tokens["access_token"], test_setup_token.token):
        assert token_endpoint.user_info(access).status_code == 401
    assert body(token_endpoint.refresh(tokens["refresh_token"]))["error"] == "invalid_grant"

    again = client.post("/account/connections/ifttt/disconnect/")
    assert "nothing to disconnect" in client.get(again["Location"]).content.decode()


def test_disconnect_is_a_post(signed_in: Any, ifttt_app: Any) -> None:
    client, user = signed_in
    token = ifttt_token_issue(user=user)
    assert client.get("/account/connections/ifttt/disconnect/").status_code == 405
    assert TokenEndpoint().user_info(token.token).status_code == 200


def test_activity_counts_a_week_of_changes_by_day(signed_in: Any) -> None:
    client, user = signed_in
    lamp = _lamp(user)
    thermostat = device_create(owner=user, name="Hall thermostat", kind=DeviceKind.THERMOSTAT)
    now = timezone.now()
    noon_yesterday = (now - timedelta(days=1)).replace(hour=12, minute=0)
    device_events_record(
        device=lamp,
        events=[
            NewEvent(type=EventType.SWITCHED_ON, occurred_at=noon_yesterday - timedelta(minutes=5)),
            NewEvent(type=EventType.SWITCHED_OFF, occurred_at=noon_yesterday),
            NewEvent(type=EventType.COLOR_CHANGED, value="red", occurred_at=noon_yesterday),
            NewEvent(type=EventType.SWITCHED_ON, occurred_at=now - timedelta(days=9)),  # outside the week
        ],
        source=EventSource.DEVICE,
    )
    device_events_record(
        device=thermostat,
        events=[NewEvent(type=EventType.TEMPERATURE, value=20.5, occurred_at=noon_yesterday)],
        source=EventSource.DEVICE,
    )
    days = account_activity_by_day(user=user)
    assert len(days) == 7
    assert days[-1].day == now.date()
    yesterday = next(d for d in days if d.day == noon_yesterday.date())
    assert yesterday.counts == {"switches": 2, "motion": 0, "settings": 1}
    assert sum(d.total for d in days) == 3  # readings and device_added are not "changes"

    html = client.get("/account/").content.decode()
    assert "<svg" in html and 'role="img"' in html
    assert "3 changes in the last 7 days" in html
    # Hovering the day's column says what it holds; the legend names every colour.
    assert f"{noon_yesterday:%A %-d %b}: 3 changes (2 switched on or off, 1 colour or temperature set)" in html
    assert html.count('<rect class="series-switches"') == 1  # one day had switching
    assert "Colour or temperature set</li>" in html
