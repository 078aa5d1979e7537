"""The device API: POST /api/v1/device/events with `Authorization: Device <key>`."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from devices.models import Device, DeviceEvent, DeviceKind, EventSource
from devices.services import device_api_key_issue, device_api_key_revoke, device_create

URL = "/api/v1/device/events"


@pytest.fixture
def owner(make_user: Any) -> Any:
    return make_user("dana")


@pytest.fixture
def thermostat(owner: Any) -> Device:
    return device_create(owner=owner, name="Hall thermostat", kind=DeviceKind.THERMOSTAT, room="Hall")


@pytest.fixture
def lamp(owner: Any) -> Device:
    return device_create(owner=owner, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office")


def post(client: Client, key: str | None, body: Any, **extra: Any) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Device {key}"} if key else {}
    return client.post(URL, data=data, content_type="application/json", **headers, **extra)


def reported(device: Device) -> int:
    return DeviceEvent.objects.filter(device=device, source=EventSource.DEVICE).count()


def test_one_event_is_stored_and_changes_the_device(client: Client, lamp: Device) -> None:
    key = device_api_key_issue(device=lamp)

    response = post(client, key, {"type": "switched_on", "event_id": "boot-1"})

    assert response.status_code == 202, response.content
    [accepted] = response.json()["events"]
    event = DeviceEvent.objects.get(public_id=accepted["id"])
    assert (event.device, event.type, event.source, event.external_id) == (lamp, "switched_on", "device", "boot-1")
    assert accepted["event_id"] == "boot-1"
    lamp.refresh_from_db()
    assert lamp.is_on is True


def test_a_batch_is_stored_in_order_with_readings(client: Client, thermostat: Device) -> None:
    key = device_api_key_issue(device=thermostat)
    at = timezone.now() - timedelta(minutes=5)
    events = [
        {"type": "temperature", "value": 19.5, "occurred_at": (at + timedelta(minutes=i)).isoformat()} for i in range(3)
    ] + [{"type": "temperature", "value": 23, "occurred_at": (at + timedelta(minutes=3)).isoformat()}]

    response = post(client, key, {"events": events})

    assert response.status_code == 202, response.content
    ids = [e["id"] for e in response.json()["events"]]
    assert len(ids) == 4 == len(set(ids))
    last = DeviceEvent.objects.get(public_id=ids[-1])
    assert (last.value, last.previous_value) == (23.0, 19.5)
    thermostat.refresh_from_db()
    assert thermostat.temperature == 23.0


def test_a_retried_event_is_stored_once_and_answered_the_same(client: Client, lamp: Device) -> None:
    key = device_api_key_issue(device=lamp)
    body = {"events": [{"type": "switched_on", "event_id": "e-1"}, {"type": "switched_off", "event_id": "e-2"}]}

    first = post(client, key, body)
    again = post(client, key, body)

    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert reported(lamp) == 2


def _batch(bad: dict[str, Any], at: int = 2) -> dict[str, Any]:
    events: list[Any] = [{"type": "temperature", "value": 20 + i} for i in range(4)]
    events[at] = bad
    return {"events": events}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_batch({"type": "melt"}), "events[2].type: 'melt' is not an event type; use one of switched_on"),
        (_batch({"value": 3}), "events[2].type: missing"),
        (_batch({"type": "temperature", "value": "warm"}), "events[2].value: a temperature event needs a number"),
        (_batch({"type": "temperature", "value": True}), "events[2].value"),
        (_batch({"type": "temperature", "value": 900}), "events[2].value: 900 °C is outside -50 to 100 °C"),
        (_batch({"type": "motion"}, at=0), "events[0].type: a thermostat cannot report motion events"),
        (_batch({"type": "temperature", "value": 20, "occurred_at": "yesterday"}), "events[2].occurred_at"),
        (_batch({"type": "temperature", "value": 20, "occurred_at": "2026-01-01T10:00:00"}), "has no time zone"),
        (_batch({"type": "temperature", "value": 20, "occurred_at": "2999-01-01T10:00:00Z"}), "in the future"),
        (_batch({"type": "temperature", "value": 20, "event_id": "x" * 101}), "events[2].event_id"),
        (_batch({"type": "temperature", "value": 20, "event_id": 7}), "events[2].event_id"),
        (_batch("switched_on"), "events[2] must be a JSON object"),
        ({"events": []}, "“events” must be a non-empty list"),
        ({"events": {"type": "temperature"}}, "“events” must be a non-empty list"),
        ({"events": [{"type": "temperature", "value": 20}] * 501}, "at most 500 events go in one request"),
        ({"type": "melt"}, "type: 'melt' is not an event type"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem_and_stores_nothing(
    client: Client, thermostat: Device, body: Any, fragment: str
) -> None:
    key = device_api_key_issue(device=thermostat)
    before = DeviceEvent.objects.count()

    response = post(client, key, body)

    assert response.status_code == 400, response.content
    payload = response.json()
    assert fragment in payload["detail"], payload
    assert payload["code"]
    assert DeviceEvent.objects.count() == before
    thermostat.refresh_from_db()
    assert thermostat.temperature is None


def test_an_oversize_body_is_refused(client: Client, thermostat: Device, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 2_000
    key = device_api_key_issue(device=thermostat)

    response = post(client, key, {"events": [{"type": "temperature", "value": 20}] * 100})

    assert response.status_code == 413
    assert "larger than the 2,000 bytes" in response.json()["detail"]
    assert reported(thermostat) == 0


@pytest.mark.parametrize("header", [None, "Bearer abc", "Device ", "Device dk_not-a-real-key"])
def test_without_a_valid_key_it_is_a_401(client: Client, lamp: Device, header: str | None) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}

    response = client.post(URL, data=json.dumps({"type": "switched_on"}), content_type="application/json", **extra)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Device"
    assert "device key" in response.json()["detail"].lower()
    assert reported(lamp) == 0


def test_a_revoked_or_replaced_key_stops_working(client: Client, lamp: Device) -> None:
    old = device_api_key_issue(device=lamp)
    new = device_api_key_issue(device=lamp)
    assert post(client, old, {"type": "switched_on"}).status_code == 401
    assert post(client, new, {"type": "switched_on"}).status_code == 202

    device_api_key_revoke(device=lamp)

    assert post(client, new, {"type": "switched_off"}).status_code == 401
    assert reported(lamp) == 1


def test_a_device_reports_only_for_itself(client: Client, lamp: Device, thermostat: Device) -> None:
    key = device_api_key_issue(device=lamp)

    response = post(client, key, {"type": "switched_on", "device": thermostat.public_id, "device_id": thermostat.pk})

    assert response.status_code == 202
    assert reported(lamp) == 1
    assert reported(thermostat) == 0


def test_the_key_is_stored_only_as_a_hash(lamp: Device) -> None:
    key = device_api_key_issue(device=lamp)

    stored = Device.objects.get(pk=lamp.pk)
    assert key not in (stored.api_key_hash, stored.api_key_prefix)
    assert stored.api_key_hash and len(stored.api_key_hash) == 64


def test_device_key_command_prints_a_working_key(client: Client, lamp: Device) -> None:
    out = StringIO()
    call_command("device_key", lamp.public_id, stdout=out, stderr=StringIO())
    key = out.getvalue().strip()

    assert post(client, key, {"type": "switched_on"}).status_code == 202

    call_command("device_key", lamp.public_id, "--revoke", stdout=StringIO())
    assert post(client, key, {"type": "switched_off"}).status_code == 401


def test_other_methods_are_refused_with_json(client: Client, lamp: Device) -> None:
    key = device_api_key_issue(device=lamp)

    response = client.get(URL, HTTP_AUTHORIZATION=f"Device {key}")

    assert response.status_code == 405
    assert "detail" in response.json()


def test_events_reach_the_ifttt_timeline(client: Client, ifttt: Any, setup_data: dict[str, Any]) -> None:
    from accounts.models import User

    fields = setup_data["samples"]["triggers"]["device_switched_on"]
    light = Device.objects.get(public_id=fields["device"])
    assert isinstance(light.owner, User)
    ifttt.post("/ifttt/v1/triggers/device_switched_on", {"triggerFields": fields, "trigger_identity": "ti-lamp"})
    key = device_api_key_issue(device=light)

    post(client, key, {"events": [{"type": "switched_off"}, {"type": "switched_on", "event_id": "on-9"}]})

    event_id = DeviceEvent.objects.get(device=light, external_id="on-9").public_id
    poll = ifttt.post("/ifttt/v1/triggers/device_switched_on", {"triggerFields": fields, "trigger_identity": "ti-lamp"})
    assert poll.json()["data"][0]["meta"]["id"] == event_id
