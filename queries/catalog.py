"""The queries of the catalog. Adding a query is one `registry.add(QuerySpec(...))` here.

Pages are keyset-paginated: `after` holds the sort key of the last row returned, so page N costs
the same as page 1. The view turns `after` into an opaque, signed cursor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from core.errors import BadRequest
from devices.models import DeviceEvent, DeviceKind
from devices.selectors import device_list, device_rooms
from protocol.fields import device_field, device_for
from protocol.registry import Fields, FieldSpec, Ingredient, Option, QueryPage, QuerySpec, iso, registry

ALL_ROOMS = "*"


def _room_options(user: Any) -> list[Option]:
    return [{"label": "All rooms", "value": ALL_ROOMS}] + [
        {"label": room, "value": room} for room in device_rooms(user=user)
    ]


def _list_devices(user: Any, fields: Fields, limit: int, after: dict[str, Any] | None) -> QueryPage:
    room = fields.get("room")
    devices = device_list(user=user, room=None if room == ALL_ROOMS else room)
    if after:
        r, n, i = after["room"], after["name"], after["id"]
        devices = devices.filter(Q(room__gt=r) | Q(room=r, name__gt=n) | Q(room=r, name=n, id__gt=i))
    page = list(devices[: limit + 1])
    more, page = len(page) > limit, page[:limit]
    rows = [
        {
            "device_id": d.public_id,
            "device_name": d.name,
            "kind": d.kind,
            "room": d.room,
            "is_on": d.is_on,
            "online": d.online,
        }
        for d in page
    ]
    last = page[-1] if page else None
    return QueryPage(rows, {"room": last.room, "name": last.name, "id": last.id} if more and last else None)


def _describe(event: DeviceEvent) -> str:
    data = event.data or {}
    if event.type == "temperature":
        return f"Temperature {event.value:g} °C"
    if event.type == "color_changed":
        return f"Colour set to {data.get('color', '?')}"
    if event.type == "target_temperature_set":
        return f"Target temperature set to {data.get('target_temperature', '?')} °C"
    return str(event.get_type_display())


def _checked_device(user: Any, value: Any, kinds: tuple[str, ...] | None = None) -> Any:
    device = device_for(user, value, kinds)
    if device is None:
        raise BadRequest("That device is not in your account. Choose one of your devices from the list.")
    return device


def _device_history(user: Any, fields: Fields, limit: int, after: dict[str, Any] | None) -> QueryPage:
    device = _checked_device(user, fields.get("device"))
    events = DeviceEvent.objects.filter(device=device).order_by("-occurred_at", "-id")
    if after:
        at = datetime.fromisoformat(after["at"])
        events = events.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=after["id"]))
    page = list(events[: limit + 1])
    more, page = len(page) > limit, page[:limit]
    rows = [{"event_type": e.type, "occurred_at": iso(e.occurred_at), "details": _describe(e)} for e in page]
    last = page[-1] if page else None
    return QueryPage(rows, {"at": last.occurred_at.isoformat(), "id": last.id} if more and last else None)


def _current_temperature(user: Any, fields: Fields, limit: int, after: dict[str, Any] | None) -> QueryPage:
    device = _checked_device(user, fields.get("device"), (DeviceKind.THERMOSTAT,))
    if after or limit == 0:
        return QueryPage([], None)
    row = {
        "device_name": device.name,
        "temperature": device.temperature,
        "target_temperature": device.target_temperature,
        "measured_at": iso(device.temperature_measured_at),
    }
    return QueryPage([row], None)


registry.add(
    QuerySpec(
        slug="list_devices",
        label="List devices",
        description="This query returns your devices, in one room or in all of them, with their state.",
        fields=(
            FieldSpec(
                slug="room",
                label="Which room?",
                helper_text="One of your rooms, or all of them.",
                options=_room_options,
            ),
        ),
        ingredients=(
            Ingredient("device_id", "Device ID", "3f9a1c2b7d4e5f60"),
            Ingredient("device_name", "Device name", "Desk lamp"),
            Ingredient("kind", "Kind of device", "light"),
            Ingredient("room", "Room", "Office"),
            Ingredient("is_on", "Is on", "true", kind="boolean"),
            Ingredient("online", "Is online", "true", kind="boolean"),
        ),
        run=_list_devices,
        sample=lambda fx: {"room": ALL_ROOMS},
    )
)

registry.add(
    QuerySpec(
        slug="device_history",
        label="Device history",
        description="This query returns what happened to a device, newest first.",
        fields=(device_field(kinds=None, helper_text="All your devices, grouped by room."),),
        ingredients=(
            Ingredient("event_type", "What happened", "switched_on"),
            Ingredient("occurred_at", "When", "2026-11-04T09:23:00+00:00", kind="date"),
            Ingredient("details", "Details", "Switched on"),
        ),
        run=_device_history,
        sample=lambda fx: {"device": fx.light.public_id},
    )
)

registry.add(
    QuerySpec(
        slug="current_temperature",
        label="Current temperature",
        description="This query returns a thermostat's latest reading and its target temperature.",
        fields=(device_field(kinds=(DeviceKind.THERMOSTAT,), label="Which thermostat?"),),
        ingredients=(
            Ingredient("device_name", "Thermostat name", "Hallway thermostat"),
            Ingredient("temperature", "Temperature (°C)", "21.5", kind="number"),
            Ingredient("target_temperature", "Target temperature (°C)", "20", kind="number"),
            Ingredient("measured_at", "Measured at", "2026-11-04T09:23:00+00:00", kind="date"),
        ),
        run=_current_temperature,
        sample=lambda fx: {"device": fx.thermostat.public_id},
    )
)
