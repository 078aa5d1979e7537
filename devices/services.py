"""Writes to devices. Every state change records a DeviceEvent in the same transaction.

Whoever causes a change (the device API, an IFTTT action, the account page, the support console)
goes through `device_events_record`, so the event history and the device's state cannot disagree,
and `events_recorded` tells subscribers (the IFTTT trigger fan-out) about every new event.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import metrics

from .models import Device, DeviceEvent, EventSource, EventType, event_public_id
from .signals import events_recorded


@dataclass(frozen=True)
class NewEvent:
    """An event to record. `value` carries the reading, colour or target temperature."""

    type: str
    value: Any = None
    occurred_at: datetime | None = None
    external_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def _apply(device: Device, new: NewEvent, occurred_at: datetime) -> tuple[dict[str, Any], float | None, float | None]:
    """Update `device` for one event; return the event's data, value and previous value."""
    data = dict(new.data)
    if new.type == EventType.SWITCHED_ON:
        device.is_on = True
    elif new.type == EventType.SWITCHED_OFF:
        device.is_on = False
    elif new.type == EventType.TEMPERATURE:
        reading = float(new.value)
        previous = device.temperature
        device.temperature = reading
        device.temperature_measured_at = occurred_at
        data["temperature"] = reading
        return data, reading, previous
    elif new.type == EventType.COLOR_CHANGED:
        data["previous_color"] = device.color
        device.color = str(new.value)
        data["color"] = device.color
    elif new.type == EventType.TARGET_TEMPERATURE_SET:
        data["previous_target_temperature"] = device.target_temperature
        device.target_temperature = float(new.value)
        data["target_temperature"] = device.target_temperature
    return data, None, None


@transaction.atomic
def device_events_record(*, device: Device, events: Sequence[NewEvent], source: str) -> list[DeviceEvent]:
    """Apply and store `events` for `device`, in order, all or nothing.

    Events whose `external_id` this device already reported are not stored again; the stored
    event is returned in their place, so a retried request gets the same answer.
    """
    # Lock the device row: concurrent reports must see each other's state (the previous reading
    # decides whether a temperature crosses a threshold).
    device = Device.objects.select_for_update().get(pk=device.pk)
    external_ids = [e.external_id for e in events if e.external_id]
    existing = (
        {ev.external_id: ev for ev in DeviceEvent.objects.filter(device=device, external_id__in=external_ids)}
        if external_ids
        else {}
    )
    now = timezone.now()
    results: list[DeviceEvent] = []
    fresh: list[DeviceEvent] = []
    seen_in_batch: dict[str, DeviceEvent] = {}
    for new in events:
        if new.external_id and new.external_id in existing:
            results.append(existing[new.external_id])
            continue
        if new.external_id and new.external_id in seen_in_batch:
            results.append(seen_in_batch[new.external_id])
            continue
        occurred_at = new.occurred_at or now
        data, value, previous = _apply(device, new, occurred_at)
        event = DeviceEvent(
            public_id=event_public_id(),
            device=device,
            owner_id=device.owner_id,
            type=new.type,
            data=data,
            value=value,
            previous_value=previous,
            occurred_at=occurred_at,
            source=source,
            external_id=new.external_id or None,
        )
        results.append(event)
        fresh.append(event)
        if new.external_id:
            seen_in_batch[new.external_id] = event
    if fresh:
        DeviceEvent.objects.bulk_create(fresh)
        device.save(
            update_fields=[
                "is_on",
                "color",
                "target_temperature",
                "temperature",
                "temperature_measured_at",
                "updated_at",
            ]
        )
        events_recorded.send(sender=DeviceEvent, events=fresh)
        count = len(fresh)
        transaction.on_commit(lambda: metrics.events_accepted.labels(source=source).inc(count))
    return results


def device_event_record(
    *, device: Device, type: str, source: str, value: Any = None, occurred_at: datetime | None = None
) -> DeviceEvent:
    return device_events_record(
        device=device, events=[NewEvent(type=type, value=value, occurred_at=occurred_at)], source=source
    )[0]


@transaction.atomic
def device_create(
    *,
    owner: Any,
    name: str,
    kind: str,
    room: str = "",
    source: str = EventSource.SYSTEM,
    occurred_at: datetime | None = None,
    **attributes: Any,
) -> Device:
    """Create a device and record its `device_added` event."""
    device = Device.objects.create(owner=owner, name=name, kind=kind, room=room, **attributes)
    device_events_record(
        device=device,
        events=[NewEvent(type=EventType.DEVICE_ADDED, occurred_at=occurred_at, data={"kind": kind})],
        source=source,
    )
    return device


def device_switch(*, device: Device, on: bool, source: str) -> DeviceEvent | None:
    """Switch a device on or off; record an event only if its state changed."""
    with transaction.atomic():
        current = Device.objects.select_for_update().get(pk=device.pk)
        if current.is_on == on:
            device.is_on = on
            return None
        event = device_event_record(
            device=current, type=EventType.SWITCHED_ON if on else EventType.SWITCHED_OFF, source=source
        )
    device.is_on = on
    return event


def device_set_color(*, device: Device, color: str, source: str) -> DeviceEvent:
    event = device_event_record(device=device, type=EventType.COLOR_CHANGED, value=color, source=source)
    device.color = color
    return event


def device_set_target_temperature(*, device: Device, temperature: float, source: str) -> DeviceEvent:
    event = device_event_record(device=device, type=EventType.TARGET_TEMPERATURE_SET, value=temperature, source=source)
    device.target_temperature = temperature
    return event


def device_set_online(*, device: Device, online: bool) -> None:
    Device.objects.filter(pk=device.pk).update(online=online, updated_at=timezone.now())
    device.online = online


def device_api_key_issue(*, device: Device) -> str:
    """Issue a new API key for `device`, replacing any old one. The key is returned once, never stored."""
    key = f"dk_{secrets.token_urlsafe(32)}"
    device.api_key_hash = device_api_key_hash(key)
    device.api_key_prefix = key[:10]
    device.save(update_fields=["api_key_hash", "api_key_prefix", "updated_at"])
    return key


def device_api_key_revoke(*, device: Device) -> None:
    device.api_key_hash = None
    device.save(update_fields=["api_key_hash", "updated_at"])


def device_api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
