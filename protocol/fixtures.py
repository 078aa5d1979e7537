"""The isolated account IFTTT's endpoint tests run against (prepared by test/setup)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from devices.models import Device, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record

TEST_USERNAME = "ifttt-endpoint-tests"
TEST_THRESHOLD = "22"


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


def sample_events(device: Device, *types: str, times: int = 3) -> list[tuple[Device, NewEvent]]:
    """`types` in turn, `times` over, on `device`: sample history for a trigger's declaration."""
    return [(device, NewEvent(type=event_type)) for _ in range(times) for event_type in types]


def sample_readings(device: Device, values: Sequence[float]) -> list[tuple[Device, NewEvent]]:
    """Temperature readings on `device`, in order: sample history for a reading-based trigger."""
    return [(device, NewEvent(type=EventType.TEMPERATURE, value=value)) for value in values]


def endpoint_tests_history_backfill(fixture: EndpointTestsFixture) -> int:
    """Give every trigger's sample timeline at least three events; return how many were recorded.

    Each trigger declares its own sample events; they are recorded only for a timeline that has fewer
    than three, with idempotency keys, so this is cheap once done and safe to repeat on every setup.
    """
    from .registry import registry

    recorded = 0
    for slug, spec in registry.triggers.items():
        if spec.history(fixture.user, spec.sample(fixture))[:3].count() >= 3:
            continue
        planned = list(spec.sample_events(fixture))
        start = timezone.now() - timedelta(minutes=10 * len(planned))
        by_device: dict[int, tuple[Device, list[NewEvent]]] = {}
        for index, (device, event) in enumerate(planned):
            keyed = replace(
                event,
                external_id=f"test-setup:{slug}:{index}",
                occurred_at=event.occurred_at or start + timedelta(minutes=10 * index),
            )
            by_device.setdefault(device.pk, (device, []))[1].append(keyed)
        for device, events in by_device.values():
            recorded += len(device_events_record(device=device, events=events, source=EventSource.SYSTEM))
    return recorded


@transaction.atomic
def endpoint_tests_fixture_prepare() -> EndpointTestsFixture:
    """Create the test user and devices, or bring them back to their starting state.

    Idempotent: each trigger's sample history is written once (see `endpoint_tests_history_backfill`);
    a second call only resets the state that the endpoint tests' actions change (the offline light
    must stay offline).
    """
    user, _ = get_user_model().objects.get_or_create(
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
        online = role != "offline_light"
        if device.online != online:
            Device.objects.filter(pk=device.pk).update(online=online)
            device.online = online
        devices[role] = device
    fixture = EndpointTestsFixture(
        user=user,
        light=devices["light"],
        plug=devices["plug"],
        thermostat=devices["thermostat"],
        motion_sensor=devices["motion_sensor"],
        offline_light=devices["offline_light"],
    )
    endpoint_tests_history_backfill(fixture)
    return fixture
