"""Reads of devices and their events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from .models import Device, DeviceEvent


def device_list(*, user: Any, kinds: Iterable[str] | None = None, room: str | None = None) -> QuerySet[Device]:
    qs = Device.objects.filter(owner=user)
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    if room is not None:
        qs = qs.filter(room=room)
    return qs.order_by("room", "name", "id")


def device_get_for_user(*, user: Any, public_id: str, kinds: Iterable[str] | None = None) -> Device | None:
    """The user's device with this public id (and of one of `kinds`), or None if it is not theirs."""
    if not isinstance(public_id, str) or not public_id:
        return None
    return device_list(user=user, kinds=kinds).filter(public_id=public_id).first()


def device_rooms(*, user: Any) -> list[str]:
    return list(
        Device.objects.filter(owner=user).exclude(room="").order_by("room").values_list("room", flat=True).distinct()
    )


def device_events_list(*, device: Device, types: Iterable[str] | None = None) -> QuerySet[DeviceEvent]:
    """A device's events, newest first, from the (device, type, occurred_at) indexes."""
    qs = DeviceEvent.objects.filter(device=device)
    if types is not None:
        qs = qs.filter(type__in=list(types))
    return qs.order_by("-occurred_at", "-id")
