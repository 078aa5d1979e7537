"""Field declarations shared by triggers, actions and queries."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from devices.models import Device, DeviceKind
from devices.selectors import device_get_for_user, device_list

from .registry import FieldSpec, Option

_KIND_NOUNS = {
    DeviceKind.LIGHT: "light",
    DeviceKind.PLUG: "plug",
    DeviceKind.THERMOSTAT: "thermostat",
    DeviceKind.MOTION_SENSOR: "motion sensor",
}


def device_options(user: Any, kinds: Iterable[str] | None) -> list[Option]:
    """The user's devices as dropdown options, grouped by room (devices without a room last)."""
    groups: dict[str, list[Option]] = {}
    loose: list[Option] = []
    for device in device_list(user=user, kinds=kinds):
        option = {"label": device.name, "value": device.public_id}
        if device.room:
            groups.setdefault(device.room, []).append(option)
        else:
            loose.append(option)
    return [{"label": room, "values": options} for room, options in groups.items()] + loose


def kinds_phrase(kinds: Iterable[str] | None) -> str:
    if kinds is None:
        return "device"
    nouns = [_KIND_NOUNS[DeviceKind(k)] for k in kinds]
    return nouns[0] if len(nouns) == 1 else ", ".join(nouns[:-1]) + " or " + nouns[-1]


def device_problem(user: Any, value: str, kinds: Iterable[str] | None) -> str | None:
    kinds = list(kinds) if kinds is not None else None
    if device_get_for_user(user=user, public_id=value, kinds=kinds) is not None:
        return None
    if kinds is not None and device_get_for_user(user=user, public_id=value) is not None:
        return f"That device is not a {kinds_phrase(kinds)}. Choose a {kinds_phrase(kinds)} from the list."
    return "That device is not in your account any more. Choose one of your devices from the list."


def device_field(
    *, kinds: Iterable[str] | None, slug: str = "device", label: str = "Which device?", helper_text: str = ""
) -> FieldSpec:
    kinds = tuple(kinds) if kinds is not None else None
    return FieldSpec(
        slug=slug,
        label=label,
        kind="dropdown",
        helper_text=helper_text or f"Your {kinds_phrase(kinds)}s, grouped by room.",
        options=lambda user: device_options(user, kinds),
        validate=lambda user, value: device_problem(user, value, kinds),
    )


def parse_number(value: Any) -> float | None:
    """A finite number from text such as "21.5" (a decimal comma is accepted), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def number_problem(value: Any, *, low: float, high: float, what: str, unit: str = "°C") -> str | None:
    number = parse_number(value)
    if number is None:
        return f"{what} must be a number, such as {low + (high - low) / 2:g}."
    if not low <= number <= high:
        return f"{what} must be between {low:g} and {high:g} {unit}; {number:g} is out of range."
    return None


def device_for(user: Any, value: Any, kinds: Iterable[str] | None = None) -> Device | None:
    return device_get_for_user(user=user, public_id=value, kinds=kinds) if isinstance(value, str) else None
