"""Reads of devices and their events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from .models import Device


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
