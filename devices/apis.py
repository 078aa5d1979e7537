"""The device API: devices (or the product's device backend) report what happened to them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import BadRequest, Unauthorized

from .models import Device, EventSource
from .serializers import (
    REPORTABLE,
    DeviceErrorSerializer,
    DeviceEventBatchSerializer,
    DeviceEventsAcceptedSerializer,
    DeviceEventSerializer,
    DeviceEventsRequest,
    events_problem,
    new_event,
)
from .services import NewEvent, device_api_key_hash, device_events_record


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


def events_parse(data: dict[str, Any], device: Device) -> list[NewEvent]:
    """The body as events: one event object, or {"events": [...]} of 1 to 500; a problem is a 400 naming
    the event and the field."""
    batch = "events" in data
    serializer: serializers.Serializer = (
        DeviceEventBatchSerializer(data=data, context={"device": device})
        if batch
        else DeviceEventSerializer(data=data, context={"device": device})
    )
    if not serializer.is_valid():
        raise BadRequest(events_problem(serializer.errors), code="invalid_event")
    return (
        [new_event(e) for e in serializer.validated_data["events"]] if batch else [new_event(serializer.validated_data)]
    )


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
        request=DeviceEventsRequest,
        responses={
            202: DeviceEventsAcceptedSerializer,
            400: OpenApiResponse(DeviceErrorSerializer, description="A bad event or body, named; nothing stored"),
            401: OpenApiResponse(DeviceErrorSerializer, description="Missing, unknown or revoked device key"),
            413: OpenApiResponse(DeviceErrorSerializer, description="The body is larger than the API accepts"),
            415: OpenApiResponse(DeviceErrorSerializer, description="The body is not JSON"),
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
