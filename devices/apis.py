"""The device API: devices (or the product's device backend) report what happened to them."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import BadRequest, Unauthorized

from .colors import color_normalize
from .models import Device, DeviceKind, EventSource, EventType
from .services import NewEvent, device_api_key_hash, device_events_record

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


class DeviceKeyAuthentication(BaseAuthentication):
    """`Authorization: Device <key>`: one indexed lookup by the key's SHA-256."""

    def authenticate(self, request: Request) -> tuple[Any, Device]:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "device" or not key.strip():
            raise Unauthorized(
                "A device key is required: send 'Authorization: Device <key>'. "
                "Get a key from support or with `manage.py device_key <device id>`."
            )
        device = Device.objects.select_related("owner").filter(api_key_hash=device_api_key_hash(key.strip())).first()
        if device is None or not device.owner.is_active:
            raise Unauthorized("This device key is unknown or was revoked. Issue the device a new key.")
        return (device.owner, device)

    def authenticate_header(self, request: Request) -> str:
        return "Device"


class DeviceKeyScheme(OpenApiAuthenticationExtension):
    target_class = DeviceKeyAuthentication
    name = "deviceKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device <key>`: the device's API key, shown once when it is issued.",
        }


def _problem(index: int | None, field: str, message: str) -> BadRequest:
    where = f"events[{index}].{field}" if index is not None else field
    return BadRequest(f"{where}: {message} Nothing was stored.", code="invalid_event")


def _number(raw: dict[str, Any], index: int | None, event_type: str) -> float:
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _problem(index, "value", f"a {event_type} event needs a number in °C, such as 21.5; got {value!r}.")
    low, high = VALUE_RANGES[event_type]
    if not low <= value <= high:
        raise _problem(index, "value", f"{value:g} °C is outside {low:g} to {high:g} °C.")
    return float(value)


def _color(raw: dict[str, Any], index: int | None) -> str:
    value = raw.get("value")
    color = color_normalize(value)
    if color is not None:
        return color
    raise _problem(index, "value", f"a color_changed event needs a CSS colour name or #rrggbb; got {value!r}.")


def _occurred_at(raw: dict[str, Any], index: int | None, now: datetime) -> datetime | None:
    value = raw.get("occurred_at")
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise _problem(index, "occurred_at", f"{value!r} is not an ISO 8601 time such as 2026-11-04T09:23:00Z.")
    if timezone.is_naive(parsed):
        raise _problem(index, "occurred_at", f"{value!r} has no time zone; add one, such as Z or +01:00.")
    if parsed > now + MAX_CLOCK_SKEW:
        raise _problem(index, "occurred_at", f"{value!r} is in the future; check the device's clock.")
    return parsed


def _event(raw: Any, index: int | None, device: Device, now: datetime) -> NewEvent:
    """One reported event, checked; a problem raises a 400 naming the event and the field."""
    if not isinstance(raw, dict):
        where = f"events[{index}]" if index is not None else "The body"
        raise BadRequest(f"{where} must be a JSON object with a “type”. Nothing was stored.", code="invalid_event")
    event_type = raw.get("type")
    if event_type not in REPORTABLE:
        known = ", ".join(REPORTABLE)
        shown = "missing" if event_type is None else f"{event_type!r} is not an event type"
        raise _problem(index, "type", f"{shown}; use one of {known}.")
    if device.kind not in REPORTABLE[event_type]:
        raise _problem(index, "type", f"a {device.get_kind_display().lower()} cannot report {event_type} events.")
    value: Any = None
    if event_type in VALUE_RANGES:
        value = _number(raw, index, event_type)
    elif event_type == EventType.COLOR_CHANGED:
        value = _color(raw, index)
    external_id = raw.get("event_id")
    if external_id is not None and (
        not isinstance(external_id, str) or not external_id or len(external_id) > MAX_EVENT_ID_LENGTH
    ):
        raise _problem(index, "event_id", f"must be text of 1 to {MAX_EVENT_ID_LENGTH} characters.")
    return NewEvent(
        type=event_type, value=value, occurred_at=_occurred_at(raw, index, now), external_id=external_id or None
    )


def events_parse(data: dict[str, Any], device: Device) -> list[NewEvent]:
    """The body as events: one event object, or {"events": [...]} of 1 to 500."""
    now = timezone.now()
    if "events" not in data:
        return [_event(data, None, device, now)]
    raw_events = data["events"]
    if not isinstance(raw_events, list) or not raw_events:
        raise BadRequest("“events” must be a non-empty list of event objects.", code="invalid_body")
    if len(raw_events) > MAX_EVENTS_PER_REQUEST:
        raise BadRequest(
            f"A request can carry at most {MAX_EVENTS_PER_REQUEST} events; this one has {len(raw_events)}. "
            "Split it into several requests. Nothing was stored.",
            code="too_many_events",
        )
    return [_event(raw, index, device, now) for index, raw in enumerate(raw_events)]


_EVENT_EXAMPLE = {"type": "temperature", "value": 21.5, "occurred_at": "2026-11-04T09:23:00Z", "event_id": "r-1042"}


class DeviceEventsApi(APIView):
    authentication_classes = [DeviceKeyAuthentication]

    @extend_schema(
        summary="Report device events",
        description=(
            'One event, or `{"events": [...]}` with up to 500, from the device the key belongs to. '
            "A batch is all or nothing. `event_id` is the device's idempotency key: a retried event "
            "is stored once and answered with the same id. Types: "
            + ", ".join(f"`{t}`" for t in REPORTABLE)
            + "; `temperature` and `target_temperature_set` carry `value` in °C, `color_changed` a "
            "CSS colour name or `#rrggbb`."
        ),
        request=inline_serializer(
            "DeviceEventsRequest",
            {
                "type": serializers.ChoiceField(choices=list(REPORTABLE), required=False),
                "value": serializers.JSONField(required=False),
                "occurred_at": serializers.DateTimeField(required=False),
                "event_id": serializers.CharField(required=False, max_length=MAX_EVENT_ID_LENGTH),
                "events": serializers.ListField(child=serializers.DictField(), required=False, max_length=500),
            },
        ),
        responses={
            202: inline_serializer(
                "DeviceEventsAccepted",
                {
                    "events": serializers.ListField(
                        child=inline_serializer(
                            "AcceptedEvent",
                            {"id": serializers.CharField(), "event_id": serializers.CharField(allow_null=True)},
                        )
                    )
                },
            ),
            400: OpenApiResponse(description='A bad event, named: `{"detail": ..., "code": ...}`'),
            401: OpenApiResponse(description="Unknown or revoked device key"),
        },
        examples=[
            OpenApiExample("One event", value=_EVENT_EXAMPLE, request_only=True),
            OpenApiExample("A batch", value={"events": [_EVENT_EXAMPLE]}, request_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        device = request.auth
        assert isinstance(device, Device)
        events = events_parse(request.data, device)
        stored = device_events_record(device=device, events=events, source=EventSource.DEVICE)
        return Response(
            {"events": [{"id": event.public_id, "event_id": event.external_id} for event in stored]}, status=202
        )
