"""The protocol core: service-key and token auth, status, test/setup, user/info, and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from conftest import SERVICE_KEY
from devices.models import Device, DeviceEvent, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from protocol.services import endpoint_tests_prepare
from triggers.models import TriggerFeedItem, TriggerIdentity


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"HTTP_IFTTT_SERVICE_KEY": SERVICE_KEY}, 200),
        ({"HTTP_IFTTT_CHANNEL_KEY": SERVICE_KEY}, 200),  # the pre-2017 header name
        ({"HTTP_IFTTT_SERVICE_KEY": "test-staging-key"}, 200),  # IFTTT's staging copy of the service
        ({"HTTP_IFTTT_SERVICE_KEY": "INVALID"}, 401),
        ({"HTTP_IFTTT_SERVICE_KEY": ""}, 401),
        ({}, 401),
    ],
)
def test_status_checks_the_service_key(client: Client, db: Any, headers: dict[str, str], status: int) -> None:
    response = client.get("/ifttt/v1/status", **headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json; charset=utf-8"
    if status == 401:
        assert response.json()["errors"][0]["message"]


def test_test_setup_needs_the_service_key(client: Client, db: Any) -> None:
    response = client.post("/ifttt/v1/test/setup", HTTP_IFTTT_SERVICE_KEY="wrong")
    assert response.status_code == 401
    assert "errors" in response.json()


def test_test_setup_twice_is_harmless(client: Client, db: Any, service_headers: dict[str, str]) -> None:
    first = client.post("/ifttt/v1/test/setup", **service_headers).json()["data"]
    devices, events = Device.objects.count(), DeviceEvent.objects.count()
    second = client.post("/ifttt/v1/test/setup", **service_headers).json()["data"]
    assert (Device.objects.count(), DeviceEvent.objects.count()) == (devices, events)
    assert second["samples"] == first["samples"]
    for data in (first, second):
        info = client.get("/ifttt/v1/user/info", HTTP_AUTHORIZATION=f"Bearer {data['accessToken']}")
        assert info.status_code == 200


def test_test_setup_restores_what_the_tests_changed(ifttt: Any, setup_data: dict[str, Any]) -> None:
    offline = Device.objects.get(public_id=setup_data["samples"]["actionRecordSkipping"]["switch_on"]["device"])
    Device.objects.filter(pk=offline.pk).update(online=True)
    endpoint_tests_prepare()
    offline.refresh_from_db()
    assert offline.online is False


def test_endpoint_tests_samples_cover_the_catalog(setup_data: dict[str, Any]) -> None:
    samples = setup_data["samples"]
    assert set(samples) == {"triggers", "triggerFieldValidations", "actions", "actionRecordSkipping", "queries"}
    assert samples["triggerFieldValidations"]["temperature_rises_above"]["threshold"] == {
        "valid": "22",
        "invalid": "150",
    }


def test_user_info_is_the_permanent_id_not_the_username(ifttt: Any, setup_data: dict[str, Any]) -> None:
    from accounts.models import User

    data = ifttt.get("/ifttt/v1/user/info").json()["data"]

    test_user = User.objects.get(is_ifttt_test_user=True)
    assert data["id"] == test_user.public_id
    assert test_user.username not in data["id"] and "@" not in data["id"]
    assert data["name"] and data["url"].startswith("https://")
    test_user.username = "renamed"
    test_user.email = "new@example.com"
    test_user.save()
    assert ifttt.get("/ifttt/v1/user/info").json()["data"]["id"] == data["id"]


def test_user_info_without_a_valid_token(ifttt: Any) -> None:
    for header in ("Bearer nope", "Basic abc", "Bearer"):
        response = ifttt.client.get("/ifttt/v1/user/info", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert response.json()["errors"][0]["message"]


def test_a_token_without_the_ifttt_scope_is_refused(ifttt: Any) -> None:
    from oauth2_provider.models import AccessToken

    from protocol.tokens import token_digest

    AccessToken.objects.filter(token_checksum=token_digest(ifttt.token)).update(scope="read")
    assert ifttt.get("/ifttt/v1/user/info").status_code == 401


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        (json.dumps({"triggerFields": "device"}), "must be an object"),
        (json.dumps({"triggerFields": {}, "limit": "many"}), "limit"),
        (json.dumps({"triggerFields": {}, "limit": -1}), "negative"),
        (json.dumps({"triggerFields": {}, "limit": True}), "limit"),
        (json.dumps({"triggerFields": {"device": 12}}), "must be text"),
        (json.dumps({"triggerFields": {"device": "no-such-device"}}), "not in your account"),
    ],
)
def test_bad_trigger_requests_are_clear_400s(ifttt: Any, body: str, fragment: str) -> None:
    response = ifttt.post("/ifttt/v1/triggers/device_switched_on", body)
    assert response.status_code == 400
    assert fragment in response.json()["errors"][0]["message"]


def test_an_oversize_body_is_a_413(ifttt: Any, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 2_000
    body = json.dumps({"triggerFields": {}, "padding": "x" * 5_000})
    response = ifttt.post("/ifttt/v1/triggers/new_device_added", body)
    assert response.status_code == 413
    assert "larger than" in response.json()["errors"][0]["message"]


def test_wrong_method_is_a_405_in_the_envelope(ifttt: Any) -> None:
    response = ifttt.get("/ifttt/v1/triggers/device_switched_on")
    assert response.status_code == 405
    assert response.json()["errors"][0]["message"]


def test_temperature_threshold_validation(ifttt: Any) -> None:
    url = "/ifttt/v1/triggers/temperature_rises_above/fields/threshold/validate"
    for value, valid in (
        ("22", True),
        ("-40", True),
        ("100", True),
        ("18,5", True),
        ("150", False),
        ("-41", False),
        ("warm", False),
        ("", False),
        ("nan", False),
    ):
        data = ifttt.post(url, {"value": value}).json()["data"]
        assert data["valid"] is valid, value
        if not valid:
            assert data["message"]


def test_temperature_rises_above_fires_once_per_crossing(ifttt: Any, make_user: Any) -> None:
    thermostat = Device.objects.get(owner__is_ifttt_test_user=True, kind=DeviceKind.THERMOSTAT)
    fields = {"device": thermostat.public_id, "threshold": "30"}
    body = {"triggerFields": fields, "trigger_identity": "hot"}
    assert ifttt.post("/ifttt/v1/triggers/temperature_rises_above", body).json()["data"] == []
    readings = [31.0, 32.0, 29.0, 30.0, 35.0, 36.0, 28.0, 30.5]
    events = device_events_record(
        device=thermostat,
        events=[NewEvent(type=EventType.TEMPERATURE, value=v) for v in readings],
        source=EventSource.DEVICE,
    )
    items = ifttt.post("/ifttt/v1/triggers/temperature_rises_above", body).json()["data"]
    # Crossings: 31 (after 25), 35 (after 30, which is not above), 30.5 (after 28).
    assert [i["temperature"] for i in items] == [30.5, 35.0, 31.0]
    assert {i["meta"]["id"] for i in items} == {events[0].public_id, events[4].public_id, events[7].public_id}
    assert all(i["threshold"] == 30.0 for i in items)


def test_events_reach_only_the_identities_they_match(ifttt: Any, setup_data: dict[str, Any], make_user: Any) -> None:
    samples = setup_data["samples"]["triggers"]
    for slug in ("device_switched_on", "device_switched_off", "motion_detected"):
        ifttt.post(f"/ifttt/v1/triggers/{slug}", {"triggerFields": samples[slug], "trigger_identity": slug})
    other = make_user("bob")
    device_create(owner=other, name="Bob's lamp", kind=DeviceKind.LIGHT)
    lamp = Device.objects.get(public_id=samples["device_switched_on"]["device"])
    before = {i.identity: i.feed.count() for i in TriggerIdentity.objects.all()}
    device_events_record(device=lamp, events=[NewEvent(type=EventType.SWITCHED_ON)], source=EventSource.DEVICE)
    after = {i.identity: i.feed.count() for i in TriggerIdentity.objects.all()}
    assert after["device_switched_on"] == before["device_switched_on"] + 1
    assert after["device_switched_off"] == before["device_switched_off"]
    assert after["motion_detected"] == before["motion_detected"]


def test_a_deleted_identity_gets_no_new_events(ifttt: Any, setup_data: dict[str, Any]) -> None:
    fields = setup_data["samples"]["triggers"]["device_switched_on"]
    ifttt.post("/ifttt/v1/triggers/device_switched_on", {"triggerFields": fields, "trigger_identity": "gone"})
    ifttt.delete("/ifttt/v1/triggers/device_switched_on/trigger_identity/gone")
    lamp = Device.objects.get(public_id=fields["device"])
    device_events_record(device=lamp, events=[NewEvent(type=EventType.SWITCHED_ON)], source=EventSource.DEVICE)
    assert not TriggerFeedItem.objects.filter(identity__identity="gone").exists()


def test_another_users_identity_cannot_be_deleted(ifttt: Any, setup_data: dict[str, Any], make_user: Any) -> None:
    other = make_user("carol")
    TriggerIdentity.objects.create(identity="carols", user=other, trigger_slug="new_device_added")
    response = ifttt.delete("/ifttt/v1/triggers/new_device_added/trigger_identity/carols")
    # Answered as for an identity nobody used, so the answer does not confirm that it exists.
    assert response.status_code == 200
    assert TriggerIdentity.objects.get(identity="carols").deleted_at is None


def test_a_failed_action_changes_nothing(ifttt: Any, setup_data: dict[str, Any]) -> None:
    fields = setup_data["samples"]["actionRecordSkipping"]["set_temperature"]
    thermostat = Device.objects.get(public_id=fields["device"])
    events = thermostat.events.count()
    response = ifttt.post("/ifttt/v1/actions/set_temperature", {"actionFields": fields})
    assert response.status_code == 400
    thermostat.refresh_from_db()
    assert thermostat.events.count() == events
    assert thermostat.target_temperature == 20.0


def test_switching_a_device_already_on_records_no_event(ifttt: Any, setup_data: dict[str, Any]) -> None:
    fields = setup_data["samples"]["actions"]["switch_on"]
    plug = Device.objects.get(public_id=fields["device"])
    ifttt.post("/ifttt/v1/actions/switch_on", {"actionFields": fields})
    count = plug.events.count()
    response = ifttt.post("/ifttt/v1/actions/switch_on", {"actionFields": fields})
    assert response.status_code == 200
    assert plug.events.count() == count


@pytest.mark.parametrize(
    ("color", "stored"), [("Blue", "blue"), ("#FF8800", "#ff8800"), ("light sky blue", "lightskyblue")]
)
def test_light_colours(ifttt: Any, setup_data: dict[str, Any], color: str, stored: str) -> None:
    fields = {**setup_data["samples"]["actions"]["set_light_color"], "color": color}
    assert ifttt.post("/ifttt/v1/actions/set_light_color", {"actionFields": fields}).status_code == 200
    assert Device.objects.get(public_id=fields["lights"]).color == stored


def test_an_unexpected_error_is_a_500_in_the_envelope(ifttt: Any, monkeypatch: Any) -> None:
    import dataclasses

    from protocol.registry import registry

    def broken(event: Any, fields: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    spec = registry.triggers["new_device_added"]
    monkeypatch.setitem(registry.triggers, "new_device_added", dataclasses.replace(spec, render=broken))
    ifttt.client.raise_request_exception = False
    response = ifttt.post("/ifttt/v1/triggers/new_device_added", {"triggerFields": {}})
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert "went wrong" in response.json()["errors"][0]["message"]
    assert "a bug" not in response.content.decode()  # no internals leak to IFTTT's users
