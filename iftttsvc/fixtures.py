"""The isolated account IFTTT's endpoint tests run against (prepared by test/setup)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from devices.models import Device, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record

TEST_USERNAME = "ifttt-endpoint-tests"
TEST_THRESHOLD = "22"
# Readings that cross TEST_THRESHOLD three times (at 23, 24 and 25).
_READINGS = (20.0, 23.0, 21.0, 24.0, 19.0, 25.0)


@dataclass(frozen=True)
class EndpointTestsFixture:
    user: Any
    light: Device
    plug: Device
    thermostat: Device
    motion_sensor: Device
    offline_light: Device
    threshold: str = TEST_THRESHOLD


_DEVICES: dict[str, dict[str, Any]] = {
    "light": {"name": "Test desk lamp", "kind": DeviceKind.LIGHT, "room": "Office", "color": "white"},
    "plug": {"name": "Test coffee maker", "kind": DeviceKind.PLUG, "room": "Kitchen"},
    "thermostat": {
        "name": "Test hallway thermostat",
        "kind": DeviceKind.THERMOSTAT,
        "room": "Hallway",
        "target_temperature": 20.0,
    },
    "motion_sensor": {"name": "Test porch sensor", "kind": DeviceKind.MOTION_SENSOR, "room": "Porch"},
    "offline_light": {"name": "Test garden light (offline)", "kind": DeviceKind.LIGHT, "room": "Garden"},
}


def _history(role: str) -> list[NewEvent]:
    """At least three events of every kind a trigger watches, spread over the past hours."""
    start = timezone.now() - timedelta(hours=6)
    if role in ("light", "plug"):
        types = [EventType.SWITCHED_ON, EventType.SWITCHED_OFF] * 3
        return [NewEvent(type=t, occurred_at=start + timedelta(minutes=10 * i)) for i, t in enumerate(types)]
    if role == "thermostat":
        return [
            NewEvent(type=EventType.TEMPERATURE, value=v, occurred_at=start + timedelta(minutes=10 * i))
            for i, v in enumerate(_READINGS)
        ]
    if role == "motion_sensor":
        return [NewEvent(type=EventType.MOTION, occurred_at=start + timedelta(minutes=15 * i)) for i in range(3)]
    return []


@transaction.atomic
def endpoint_tests_fixture_prepare() -> EndpointTestsFixture:
    """Create the test user and devices, or bring them back to their starting state.

    Idempotent: history is written once, when a device is created; a second call only resets the
    state that the endpoint tests' actions change (the offline light must stay offline).
    """
    user, _ = User.objects.get_or_create(
        username=TEST_USERNAME,
        defaults={"email": "ifttt-endpoint-tests@example.invalid", "first_name": "IFTTT endpoint tests"},
    )
    if not user.is_ifttt_test_user or user.has_usable_password():
        user.is_ifttt_test_user = True
        user.set_unusable_password()
        user.save(update_fields=["is_ifttt_test_user", "password"])
    devices: dict[str, Device] = {}
    added_at = timezone.now() - timedelta(days=1)
    for index, (role, spec) in enumerate(_DEVICES.items()):
        device = Device.objects.filter(owner=user, name=spec["name"]).first()
        if device is None:
            attributes = {k: v for k, v in spec.items() if k not in ("name", "kind", "room")}
            device = device_create(
                owner=user,
                name=spec["name"],
                kind=spec["kind"],
                room=spec["room"],
                occurred_at=added_at + timedelta(minutes=index),
                **attributes,
            )
            device_events_record(device=device, events=_history(role), source=EventSource.SYSTEM)
        online = role != "offline_light"
        if device.online != online:
            Device.objects.filter(pk=device.pk).update(online=online)
            device.online = online
        devices[role] = device
    return EndpointTestsFixture(
        user=user,
        light=devices["light"],
        plug=devices["plug"],
        thermostat=devices["thermostat"],
        motion_sensor=devices["motion_sensor"],
        offline_light=devices["offline_light"],
    )
