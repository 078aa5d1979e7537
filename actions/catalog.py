"""The actions of the catalog. Adding an action is one `registry.add(ActionSpec(...))` here.

An action whose input can never succeed (a device that is not the user's, a device that is
offline, a value out of range) raises `Skip`, so IFTTT stops retrying and shows the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.errors import Skip
from devices.colors import color_normalize
from devices.models import SWITCHABLE_KINDS, Device, DeviceKind, EventSource
from devices.services import device_set_color, device_set_target_temperature, device_switch
from protocol.fields import device_field, device_for, kinds_phrase, number_problem, parse_number
from protocol.registry import ActionResult, ActionSpec, Fields, FieldSpec, registry

TARGET_RANGE = (5.0, 30.0)


def _usable_device(user: Any, value: Any, kinds: Iterable[str] | None, verb: str) -> Device:
    kinds = tuple(kinds) if kinds is not None else None
    device = device_for(user, value, kinds)
    if device is None:
        if kinds is not None and device_for(user, value) is not None:
            raise Skip(f"That device is not a {kinds_phrase(kinds)}, so it can't be {verb}.")
        raise Skip("That device is not in your account any more. Edit the Applet and choose another device.")
    if not device.online:
        raise Skip(f"{device.name} is offline, so it couldn't be {verb}. Check its power and Wi-Fi.")
    return device


def _switch(user: Any, fields: Fields, on: bool) -> ActionResult:
    device = _usable_device(user, fields.get("device"), SWITCHABLE_KINDS, "switched on" if on else "switched off")
    event = device_switch(device=device, on=on, source=EventSource.IFTTT)
    return ActionResult(device=device, event=event)


switchable_device = device_field(
    kinds=SWITCHABLE_KINDS, helper_text="Your lights, plugs and thermostats, grouped by room."
)

registry.add(
    ActionSpec(
        slug="switch_on",
        label="Switch on a device",
        description="This action switches on the light, plug or thermostat you choose.",
        fields=(switchable_device,),
        run=lambda user, fields: _switch(user, fields, on=True),
        sample=lambda fx: {"device": fx.plug.public_id},
        skip_sample=lambda fx: {"device": fx.offline_light.public_id},
    )
)

registry.add(
    ActionSpec(
        slug="switch_off",
        label="Switch off a device",
        description="This action switches off the light, plug or thermostat you choose.",
        fields=(switchable_device,),
        run=lambda user, fields: _switch(user, fields, on=False),
        sample=lambda fx: {"device": fx.plug.public_id},
        skip_sample=lambda fx: {"device": "no-such-device"},
    )
)


def _set_temperature(user: Any, fields: Fields) -> ActionResult:
    device = _usable_device(user, fields.get("device"), (DeviceKind.THERMOSTAT,), "set")
    low, high = TARGET_RANGE
    problem = number_problem(fields.get("temperature"), low=low, high=high, what="The target temperature")
    if problem:
        raise Skip(problem)
    target = parse_number(fields.get("temperature"))
    assert target is not None
    event = device_set_target_temperature(device=device, temperature=target, source=EventSource.IFTTT)
    return ActionResult(device=device, event=event)


registry.add(
    ActionSpec(
        slug="set_temperature",
        label="Set thermostat temperature",
        description="This action sets the target temperature of the thermostat you choose.",
        fields=(
            device_field(kinds=(DeviceKind.THERMOSTAT,), label="Which thermostat?"),
            FieldSpec(
                slug="temperature",
                label="Temperature (°C)",
                kind="text",
                helper_text="A number from 5 to 30, in degrees Celsius, such as 21 or 19.5.",
            ),
        ),
        run=_set_temperature,
        sample=lambda fx: {"device": fx.thermostat.public_id, "temperature": "21.5"},
        skip_sample=lambda fx: {"device": fx.thermostat.public_id, "temperature": "45"},
    )
)


def _set_light_color(user: Any, fields: Fields) -> ActionResult:
    device = _usable_device(user, fields.get("lights"), (DeviceKind.LIGHT,), "recoloured")
    color = color_normalize(fields.get("color"))
    if color is None:
        raise Skip(
            f"“{fields.get('color')}” is not a colour we know. Use a colour name such as “blue” or "
            "“tomato”, or a hex code such as #ff8800."
        )
    event = device_set_color(device=device, color=color, source=EventSource.IFTTT)
    return ActionResult(device=device, event=event)


registry.add(
    ActionSpec(
        slug="set_light_color",
        label="Change a light's colour",
        description="This action changes the colour of the light you choose.",
        fields=(
            device_field(
                kinds=(DeviceKind.LIGHT,),
                slug="lights",
                label="Which light?",
                helper_text="Your lights, grouped by room.",
            ),
            FieldSpec(
                slug="color",
                label="Colour",
                kind="text",
                helper_text="A colour name such as blue or tomato, or a hex code such as #ff8800.",
            ),
        ),
        run=_set_light_color,
        sample=lambda fx: {"lights": fx.light.public_id, "color": "blue"},
        skip_sample=lambda fx: {"lights": fx.light.public_id, "color": "not-a-colour"},
    )
)
