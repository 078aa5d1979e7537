"""The triggers of the catalog. Adding a trigger is one `registry.add(TriggerSpec(...))` here."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from devices.models import SWITCHABLE_KINDS, DeviceEvent, DeviceKind, EventType
from devices.services import NewEvent
from protocol.fields import device_field, number_problem, parse_number
from protocol.fixtures import EndpointTestsFixture, sample_events, sample_readings
from protocol.registry import Fields, FieldSpec, Ingredient, TimelineEvent, TriggerSpec, iso, registry

THRESHOLD_RANGE = (-40.0, 100.0)


def _device_events(user: Any, fields: Fields, event_type: str) -> QuerySet[DeviceEvent]:
    return DeviceEvent.objects.filter(owner=user, device__public_id=fields["device"], type=event_type).order_by(
        "-occurred_at", "-id"
    )


def _is_device_event(event: DeviceEvent, fields: Fields, event_type: str) -> bool:
    return event.type == event_type and event.device.public_id == fields.get("device")


def _device_ingredients(event: TimelineEvent) -> dict[str, Any]:
    return {"device_id": event.device.public_id, "device_name": event.device.name, "room": event.device.room}


switchable_device = device_field(
    kinds=SWITCHABLE_KINDS, helper_text="Your lights, plugs and thermostats, grouped by room."
)

registry.add(
    TriggerSpec(
        slug="device_switched_on",
        label="Device switched on",
        description="This trigger fires every time the device you choose is switched on, however it happened.",
        fields=(switchable_device,),
        ingredients=(
            Ingredient("device_id", "Device ID", "3f9a1c2b7d4e5f60"),
            Ingredient("device_name", "Device name", "Desk lamp"),
            Ingredient("room", "Room", "Office"),
            Ingredient("switched_on_at", "Switched on at", "2026-11-04T09:23:00+00:00", kind="date"),
        ),
        matches=lambda event, fields: _is_device_event(event, fields, EventType.SWITCHED_ON),
        history=lambda user, fields: _device_events(user, fields, EventType.SWITCHED_ON),
        render=lambda event, fields: {**_device_ingredients(event), "switched_on_at": iso(event.occurred_at)},
        sample=lambda fx: {"device": fx.light.public_id},
        sample_events=lambda fx: sample_events(fx.light, EventType.SWITCHED_ON, EventType.SWITCHED_OFF),
        event_types=(EventType.SWITCHED_ON,),
    )
)

registry.add(
    TriggerSpec(
        slug="device_switched_off",
        label="Device switched off",
        description="This trigger fires every time the device you choose is switched off, however it happened.",
        fields=(switchable_device,),
        ingredients=(
            Ingredient("device_id", "Device ID", "3f9a1c2b7d4e5f60"),
            Ingredient("device_name", "Device name", "Desk lamp"),
            Ingredient("room", "Room", "Office"),
            Ingredient("switched_off_at", "Switched off at", "2026-11-04T09:23:00+00:00", kind="date"),
        ),
        matches=lambda event, fields: _is_device_event(event, fields, EventType.SWITCHED_OFF),
        history=lambda user, fields: _device_events(user, fields, EventType.SWITCHED_OFF),
        render=lambda event, fields: {**_device_ingredients(event), "switched_off_at": iso(event.occurred_at)},
        sample=lambda fx: {"device": fx.light.public_id},
        sample_events=lambda fx: sample_events(fx.light, EventType.SWITCHED_ON, EventType.SWITCHED_OFF),
        event_types=(EventType.SWITCHED_OFF,),
    )
)


def _threshold_problem(user: Any, value: Any) -> str | None:
    low, high = THRESHOLD_RANGE
    return number_problem(value, low=low, high=high, what="The temperature threshold")


def _crosses(event: DeviceEvent, fields: Fields) -> bool:
    """A reading above the threshold whose previous reading was at or below it (or the first)."""
    threshold = parse_number(fields.get("threshold"))
    if threshold is None or event.value is None:
        return False
    return event.value > threshold and (event.previous_value is None or event.previous_value <= threshold)


def _crossings(user: Any, fields: Fields) -> QuerySet[DeviceEvent]:
    threshold = parse_number(fields["threshold"])
    return _device_events(user, fields, EventType.TEMPERATURE).filter(
        Q(previous_value__isnull=True) | Q(previous_value__lte=threshold), value__gt=threshold
    )


def _temperature_validations(fx: EndpointTestsFixture) -> dict[str, dict[str, Any]]:
    return {
        "device": {"valid": fx.thermostat.public_id, "invalid": fx.light.public_id},
        "threshold": {"valid": fx.threshold, "invalid": "150"},
    }


registry.add(
    TriggerSpec(
        slug="temperature_rises_above",
        label="Temperature rises above",
        description=(
            "This trigger fires when a thermostat's reading rises above the temperature you set "
            "(once per crossing: it must fall back to or below it before firing again)."
        ),
        fields=(
            device_field(kinds=(DeviceKind.THERMOSTAT,), label="Which thermostat?"),
            FieldSpec(
                slug="threshold",
                label="Temperature (°C)",
                kind="text",
                helper_text="A number from -40 to 100, in degrees Celsius, such as 25 or 18.5.",
                validate=_threshold_problem,
            ),
        ),
        ingredients=(
            Ingredient("device_name", "Thermostat name", "Hallway thermostat"),
            Ingredient("room", "Room", "Hallway"),
            Ingredient("temperature", "Temperature (°C)", "23.5", kind="number"),
            Ingredient("threshold", "Threshold (°C)", "22", kind="number"),
            Ingredient("measured_at", "Measured at", "2026-11-04T09:23:00+00:00", kind="date"),
        ),
        matches=lambda event, fields: event.type == EventType.TEMPERATURE
        and event.device.public_id == fields.get("device")
        and _crosses(event, fields),
        history=_crossings,
        render=lambda event, fields: {
            "device_name": event.device.name,
            "room": event.device.room,
            "temperature": event.value,
            "threshold": parse_number(fields.get("threshold")),
            "measured_at": iso(event.occurred_at),
        },
        sample=lambda fx: {"device": fx.thermostat.public_id, "threshold": fx.threshold},
        # Readings around the sample threshold (22) that cross it three times.
        sample_events=lambda fx: sample_readings(fx.thermostat, (20.0, 23.0, 21.0, 24.0, 19.0, 25.0)),
        event_types=(EventType.TEMPERATURE,),
        validation_samples=_temperature_validations,
    )
)

registry.add(
    TriggerSpec(
        slug="motion_detected",
        label="Motion detected",
        description="This trigger fires every time the motion sensor you choose detects movement.",
        fields=(device_field(kinds=(DeviceKind.MOTION_SENSOR,), label="Which motion sensor?"),),
        ingredients=(
            Ingredient("device_name", "Sensor name", "Porch sensor"),
            Ingredient("room", "Room", "Porch"),
            Ingredient("detected_at", "Detected at", "2026-11-04T09:23:00+00:00", kind="date"),
        ),
        matches=lambda event, fields: _is_device_event(event, fields, EventType.MOTION),
        history=lambda user, fields: _device_events(user, fields, EventType.MOTION),
        render=lambda event, fields: {
            "device_name": event.device.name,
            "room": event.device.room,
            "detected_at": iso(event.occurred_at),
        },
        sample=lambda fx: {"device": fx.motion_sensor.public_id},
        sample_events=lambda fx: sample_events(fx.motion_sensor, EventType.MOTION),
        event_types=(EventType.MOTION,),
    )
)

registry.add(
    TriggerSpec(
        slug="new_device_added",
        label="New device added",
        description="This trigger fires every time a new device is added to your account.",
        fields=(),
        ingredients=(
            Ingredient("device_id", "Device ID", "3f9a1c2b7d4e5f60"),
            Ingredient("device_name", "Device name", "Desk lamp"),
            Ingredient("kind", "Kind of device", "light"),
            Ingredient("room", "Room", "Office"),
            Ingredient("added_at", "Added at", "2026-11-04T09:23:00+00:00", kind="date"),
        ),
        matches=lambda event, fields: event.type == EventType.DEVICE_ADDED,
        history=lambda user, fields: DeviceEvent.objects.filter(owner=user, type=EventType.DEVICE_ADDED).order_by(
            "-occurred_at", "-id"
        ),
        render=lambda event, fields: {
            **_device_ingredients(event),
            "kind": event.device.kind,
            "added_at": iso(event.occurred_at),
        },
        sample=lambda fx: {},
        # The test account's devices are each added once; these only top up an account with fewer.
        sample_events=lambda fx: [
            (device, NewEvent(type=EventType.DEVICE_ADDED)) for device in (fx.light, fx.plug, fx.motion_sensor)
        ],
        event_types=(EventType.DEVICE_ADDED,),
    )
)
