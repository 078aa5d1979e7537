"""The device API's bodies: these serializers both check a report and describe it in the OpenAPI schema."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from core.errors import serializer_problems

from .colors import color_normalize
from .models import Device, DeviceKind, EventType
from .services import NewEvent

MAX_EVENTS_PER_REQUEST = 500
MAX_EVENT_ID_LENGTH = 100
# How far ahead of our clock a device's `occurred_at` may be (device clocks drift); beyond it the
# event would sit at the top of every IFTTT timeline until the real time caught up.
MAX_CLOCK_SKEW = timedelta(minutes=5)

# What each kind of device can report, and the range of each numeric value.
REPORTABLE: dict[str, tuple[str, ...]] = {
    EventType.SWITCHED_ON: (DeviceKind.LIGHT, DeviceKind.PLUG, DeviceKind.THERMOSTAT),
    EventType.SWITCHED_OFF: (DeviceKind.LIGHT, DeviceKind.PLUG, DeviceKind.THERMOSTAT),
    EventType.TEMPERATURE: (DeviceKind.THERMOSTAT,),
    EventType.TARGET_TEMPERATURE_SET: (DeviceKind.THERMOSTAT,),
    EventType.MOTION: (DeviceKind.MOTION_SENSOR,),
    EventType.COLOR_CHANGED: (DeviceKind.LIGHT,),
}
VALUE_RANGES: dict[str, tuple[float, float]] = {
    EventType.TEMPERATURE: (-50.0, 100.0),
    EventType.TARGET_TEMPERATURE_SET: (5.0, 35.0),
}
_EXAMPLE_TIME = "2026-11-04T09:23:00Z"


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its time zone; a time without one is refused, not guessed."""

    default_error_messages = {
        "invalid": f"{{input!r}} is not an ISO 8601 time such as {_EXAMPLE_TIME}.",
        "naive": "{input!r} has no time zone; add one, such as Z or +01:00.",
        "future": "{input!r} is in the future; check the device's clock.",
    }

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str):
            self.fail("invalid", input=value)
        try:
            parsed = parse_datetime(value)
        except ValueError:  # well formed but impossible: 30 February, hour 25, offset +99:00
            parsed = None
        if parsed is None:
            self.fail("invalid", input=value)
        assert parsed is not None
        if timezone.is_naive(parsed):
            self.fail("naive", input=value)
        if parsed > timezone.now() + MAX_CLOCK_SKEW:
            self.fail("future", input=value)
        return parsed


class DeviceEventSerializer(serializers.Serializer):
    """One event. `value` depends on `type`: °C for temperature and target_temperature_set, a CSS colour
    for color_changed; other types carry none."""

    type = serializers.ChoiceField(
        choices=list(REPORTABLE),
        error_messages={
            "required": "missing; use one of " + ", ".join(REPORTABLE) + ".",
            "null": "missing; use one of " + ", ".join(REPORTABLE) + ".",
            "invalid_choice": "{input!r} is not an event type; use one of " + ", ".join(REPORTABLE) + ".",
        },
    )
    value = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="°C (a number) for temperature and target_temperature_set; a CSS colour name or #rrggbb "
        "for color_changed.",
    )
    occurred_at = AwareDateTimeField(
        required=False, allow_null=True, help_text=f"When it happened, with a time zone, such as {_EXAMPLE_TIME}."
    )
    event_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=MAX_EVENT_ID_LENGTH,
        trim_whitespace=False,
        help_text="The device's own idempotency key: a retried event is stored once.",
        error_messages={
            "invalid": f"must be text of 1 to {MAX_EVENT_ID_LENGTH} characters.",
            "blank": f"must be text of 1 to {MAX_EVENT_ID_LENGTH} characters.",
            "max_length": f"must be text of 1 to {MAX_EVENT_ID_LENGTH} characters.",
        },
    )

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"": "must be a JSON object with a “type”."})
        # CharField would turn a number into text; an event id is the device's text, never a number.
        if data.get("event_id") is not None and not isinstance(data["event_id"], str):
            raise serializers.ValidationError({"event_id": self.fields["event_id"].error_messages["invalid"]})
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        device: Device = self.context["device"]
        event_type = attrs["type"]
        if device.kind not in REPORTABLE[event_type]:
            raise serializers.ValidationError(
                {"type": f"a {device.get_kind_display().lower()} cannot report {event_type} events."}
            )
        value = attrs.get("value")
        if event_type in VALUE_RANGES:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise serializers.ValidationError(
                    {"value": f"a {event_type} event needs a number in °C, such as 21.5; got {value!r}."}
                )
            low, high = VALUE_RANGES[event_type]
            if not low <= value <= high:
                raise serializers.ValidationError({"value": f"{value:g} °C is outside {low:g} to {high:g} °C."})
            attrs["value"] = float(value)
        elif event_type == EventType.COLOR_CHANGED:
            color = color_normalize(value)
            if color is None:
                raise serializers.ValidationError(
                    {"value": f"a color_changed event needs a CSS colour name or #rrggbb; got {value!r}."}
                )
            attrs["value"] = color
        else:
            attrs["value"] = None
        return attrs


def new_event(data: dict[str, Any]) -> NewEvent:
    """One event's validated data, for `device_events_record`."""
    return NewEvent(
        type=data["type"], value=data["value"], occurred_at=data.get("occurred_at"), external_id=data.get("event_id")
    )


class DeviceEventBatchSerializer(serializers.Serializer):
    events = DeviceEventSerializer(  # type: ignore[call-arg]  # DRF takes max_length with many=True
        many=True,
        allow_empty=False,
        max_length=MAX_EVENTS_PER_REQUEST,
        error_messages={
            "not_a_list": "must be a non-empty list of event objects.",
            "empty": "must be a non-empty list of event objects.",
            "max_length": f"at most {MAX_EVENTS_PER_REQUEST} events go in one request; split them into several.",
        },
    )


DeviceEventsRequest = PolymorphicProxySerializer(
    component_name="DeviceEventsRequest",
    serializers=[DeviceEventSerializer, DeviceEventBatchSerializer],
    resource_type_field_name=None,
)


class AcceptedEventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The event's public id (IFTTT's meta.id).")
    event_id = serializers.CharField(allow_null=True, help_text="The device's own event_id, if it sent one.")


class DeviceEventsAcceptedSerializer(serializers.Serializer):
    events = AcceptedEventSerializer(many=True)


class DeviceErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong, naming the event and field; nothing was stored.")
    code = serializers.CharField()


def events_problem(errors: Any) -> str:
    """The first problem, in words a device developer can act on."""
    problems = serializer_problems(errors) or [("", "invalid", "is not a device event.")]
    where, _code, message = problems[0]
    if where == "":
        return f"The body {message} Nothing was stored."
    if message.startswith("must be"):
        shown = where if "[" in where else f"“{where}”"
        return f"{shown} {message} Nothing was stored."
    return f"{where}: {message} Nothing was stored."
