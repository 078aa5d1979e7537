"""The service's Applet recipes, declared beside the catalog and validated against it.

IFTTT wants at least twelve published Applets before a service launches, and a query that no Applet
uses is a common reason a review fails. Each recipe here is one Applet idea: a trigger with its fields,
optional queries, an optional filter, and an action whose fields may use ingredients as IFTTT does
(`{{device_id}}` from the trigger, `{{list_devices.device_id}}` from a query's first row).

Dropdown fields name an option by its label ("Desk lamp"), as a person picks it; the Applet emulator
(`manage.py ifttt_applet --recipe NAME`) resolves labels to values through the service's options.
Each recipe also says how to cause its trigger (`cause`), so the emulator and CI can run it end to end
on the tester account `seed_demo` creates, and the landing page can say what to try.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .registry import Registry

MIN_RECIPES = 12  # IFTTT's minimum of published Applets at launch
INGREDIENT = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")

# The fields whose options are the user's devices (by name).
DEVICE_FIELDS = ("device", "lights")
LIVING_ROOM = "Living room thermostat"
BEDROOM = "Bedroom thermostat"


@dataclass(frozen=True)
class QueryStep:
    slug: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    """IFTTT's filter code, in its simplest form: run the action only if an ingredient compares so."""

    ingredient: str
    op: Literal["==", "!="]
    value: str

    def holds(self, ingredients: Mapping[str, Any]) -> bool:
        actual = ingredients.get(self.ingredient)
        text = actual if isinstance(actual, str) else "" if actual is None else str(actual)
        return (text == self.value) == (self.op == "==")

    def describe(self) -> str:
        verb = "is" if self.op == "==" else "is not"
        return f"{self.ingredient} {verb} “{self.value}”"


# How to make a recipe's trigger fire on the tester account, one step at a time.
Step = tuple[Literal["switch_on", "switch_off", "motion", "temperature", "add_device"], str, float | None]


@dataclass(frozen=True)
class Recipe:
    slug: str
    name: str
    description: str
    trigger: str
    trigger_fields: Mapping[str, str]
    action: str
    action_fields: Mapping[str, str]
    cause: tuple[Step, ...]
    queries: tuple[QueryStep, ...] = ()
    only_if: Condition | None = None

    def cause_text(self) -> str:
        """What a tester does to see the Applet run."""
        return "; then ".join(_step_text(step) for step in self.cause)


def _step_text(step: Step) -> str:
    what, device, value = step
    if what == "switch_on":
        return f"switch on the {device}"
    if what == "switch_off":
        return f"switch off the {device}"
    if what == "motion":
        return f"walk past the {device}"
    if what == "temperature":
        return f"let the {device} read {value:g} °C"
    return f"add a device named “{device}”"


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        slug="porch_motion_warm_up",
        name="Warm the living room when someone arrives",
        description="When the porch sensor detects motion, set the living room thermostat to 21 °C.",
        trigger="motion_detected",
        trigger_fields={"device": "Porch sensor"},
        action="set_temperature",
        action_fields={"device": LIVING_ROOM, "temperature": "21"},
        cause=(("motion", "Porch sensor", None),),
    ),
    Recipe(
        slug="porch_motion_bedside_red",
        name="Turn the bedside lamp red when someone is at the door",
        description="When the porch sensor detects motion, change the bedside lamp's colour to red.",
        trigger="motion_detected",
        trigger_fields={"device": "Porch sensor"},
        action="set_light_color",
        action_fields={"lights": "Bedside lamp", "color": "red"},
        cause=(("motion", "Porch sensor", None),),
    ),
    Recipe(
        slug="desk_lamp_starts_coffee",
        name="Start the coffee maker with the desk lamp",
        description="When you switch on the desk lamp, switch on the coffee maker too.",
        trigger="device_switched_on",
        trigger_fields={"device": "Desk lamp"},
        action="switch_on",
        action_fields={"device": "Coffee maker"},
        cause=(("switch_off", "Desk lamp", None), ("switch_on", "Desk lamp", None)),
    ),
    Recipe(
        slug="coffee_lights_desk",
        name="Light your desk when the coffee starts",
        description="When the coffee maker is switched on, switch on the desk lamp.",
        trigger="device_switched_on",
        trigger_fields={"device": "Coffee maker"},
        action="switch_on",
        action_fields={"device": "Desk lamp"},
        cause=(("switch_off", "Coffee maker", None), ("switch_on", "Coffee maker", None)),
    ),
    Recipe(
        slug="hall_light_bedside_on",
        name="Switch on the bedside lamp from the hall",
        description="When you switch on the hall light, switch on the bedside lamp so the bedroom is lit.",
        trigger="device_switched_on",
        trigger_fields={"device": "Hall light"},
        action="switch_on",
        action_fields={"device": "Bedside lamp"},
        cause=(("switch_off", "Hall light", None), ("switch_on", "Hall light", None)),
    ),
    Recipe(
        slug="hall_off_bedside_off",
        name="Switch off the bedside lamp with the hall light",
        description="When you switch off the hall light, switch off the bedside lamp as well.",
        trigger="device_switched_off",
        trigger_fields={"device": "Hall light"},
        action="switch_off",
        action_fields={"device": "Bedside lamp"},
        cause=(("switch_on", "Hall light", None), ("switch_off", "Hall light", None)),
    ),
    Recipe(
        slug="bedside_off_night_heating",
        name="Lower the heating at bedtime",
        description="When you switch off the bedside lamp, set the living room thermostat to 18 °C.",
        trigger="device_switched_off",
        trigger_fields={"device": "Bedside lamp"},
        action="set_temperature",
        action_fields={"device": LIVING_ROOM, "temperature": "18"},
        cause=(("switch_on", "Bedside lamp", None), ("switch_off", "Bedside lamp", None)),
    ),
    Recipe(
        slug="leave_desk_light_hallway",
        name="Light the hallway when you leave your desk",
        description="When you switch off the desk lamp, switch on the first device in the hallway.",
        trigger="device_switched_off",
        trigger_fields={"device": "Desk lamp"},
        queries=(QueryStep("list_devices", {"room": "Hallway"}),),
        action="switch_on",
        action_fields={"device": "{{list_devices.device_id}}"},
        cause=(("switch_on", "Desk lamp", None), ("switch_off", "Desk lamp", None)),
    ),
    Recipe(
        slug="too_warm_back_to_21",
        name="Cool the living room down when it gets too warm",
        description="When the living room gets warmer than 24 °C, set its thermostat back to 21 °C.",
        trigger="temperature_rises_above",
        trigger_fields={"device": LIVING_ROOM, "threshold": "24"},
        action="set_temperature",
        action_fields={"device": LIVING_ROOM, "temperature": "21"},
        cause=(("temperature", LIVING_ROOM, 20.0), ("temperature", LIVING_ROOM, 25.5)),
    ),
    Recipe(
        slug="too_warm_desk_lamp_orange",
        name="Turn the desk lamp orange when it gets hot",
        description="When the living room gets warmer than 26 °C, change the desk lamp's colour to orange.",
        trigger="temperature_rises_above",
        trigger_fields={"device": LIVING_ROOM, "threshold": "26"},
        action="set_light_color",
        action_fields={"lights": "Desk lamp", "color": "orange"},
        cause=(("temperature", LIVING_ROOM, 20.0), ("temperature", LIVING_ROOM, 27.0)),
    ),
    Recipe(
        slug="bedroom_heating_like_living_room",
        name="Heat the bedroom like the living room",
        description=(
            "When you switch on the bedroom thermostat, give it the living room thermostat's target temperature."
        ),
        trigger="device_switched_on",
        trigger_fields={"device": BEDROOM},
        queries=(QueryStep("current_temperature", {"device": LIVING_ROOM}),),
        action="set_temperature",
        action_fields={"device": BEDROOM, "temperature": "{{current_temperature.target_temperature}}"},
        cause=(("switch_off", BEDROOM, None), ("switch_on", BEDROOM, None)),
    ),
    Recipe(
        slug="porch_motion_hall_light_if_off",
        name="Light the hall when someone is at the porch",
        description=(
            "When the porch sensor detects motion, switch on the hall light, unless the hall light's latest "
            "event shows it is already on."
        ),
        trigger="motion_detected",
        trigger_fields={"device": "Porch sensor"},
        queries=(QueryStep("device_history", {"device": "Hall light"}),),
        only_if=Condition("device_history.event_type", "!=", "switched_on"),
        action="switch_on",
        action_fields={"device": "Hall light"},
        cause=(("switch_off", "Hall light", None), ("motion", "Porch sensor", None)),
    ),
    Recipe(
        slug="new_device_switched_on",
        name="Try out every new light or plug",
        description="When you add a new device to your account, switch it on.",
        trigger="new_device_added",
        trigger_fields={},
        action="switch_on",
        action_fields={"device": "{{device_id}}"},
        cause=(("add_device", "Reading lamp", None),),
    ),
)


def recipe_get(slug: str) -> Recipe | None:
    return next((recipe for recipe in RECIPES if recipe.slug == slug), None)


def recipe_problems(registry: Registry, recipes: tuple[Recipe, ...] = RECIPES) -> list[str]:
    """Everything that would stop a recipe from being built on IFTTT: unknown slugs or fields, missing
    required fields, ingredients the trigger or its queries do not have, duplicate names."""
    problems: list[str] = []
    for recipe in recipes:
        where = f"recipe {recipe.slug}"
        trigger = registry.triggers.get(recipe.trigger)
        action = registry.actions.get(recipe.action)
        if trigger is None:
            problems.append(f"{where}: no trigger {recipe.trigger!r} in the catalog")
            continue
        if action is None:
            problems.append(f"{where}: no action {recipe.action!r} in the catalog")
            continue
        available = {i.slug for i in trigger.ingredients}
        problems += _field_problems(where, "trigger", trigger.fields, recipe.trigger_fields, set())
        for step in recipe.queries:
            query = registry.queries.get(step.slug)
            if query is None:
                problems.append(f"{where}: no query {step.slug!r} in the catalog")
                continue
            problems += _field_problems(where, f"query {step.slug}", query.fields, step.fields, available)
            available |= {f"{step.slug}.{i.slug}" for i in query.ingredients}
        problems += _field_problems(where, "action", action.fields, recipe.action_fields, available)
        if recipe.only_if is not None and recipe.only_if.ingredient not in available:
            problems.append(f"{where}: the filter uses {{{{{recipe.only_if.ingredient}}}}}, which no step provides")
        if not recipe.cause:
            problems.append(f"{where}: says nothing about how to cause its trigger")
    for attribute in ("slug", "name"):
        values = [getattr(r, attribute) for r in recipes]
        for value in sorted({v for v in values if values.count(v) > 1}):
            problems.append(f"two recipes share the {attribute} {value!r}")
    return problems


def _field_problems(where: str, what: str, declared: Any, given: Mapping[str, str], ingredients: set[str]) -> list[str]:
    problems: list[str] = []
    slugs = {spec.slug for spec in declared}
    for name in given:
        if name not in slugs:
            problems.append(f"{where}: the {what} has no field {name!r}")
    for spec in declared:
        value = given.get(spec.slug, "")
        if spec.required and not value:
            problems.append(f"{where}: the {what} field {spec.slug!r} needs a value")
        for used in INGREDIENT.findall(value):
            if used not in ingredients:
                problems.append(f"{where}: the {what} field {spec.slug!r} uses {{{{{used}}}}}, which no step provides")
    return problems


def queries_without_recipe(registry: Registry, recipes: tuple[Recipe, ...] = RECIPES) -> list[str]:
    used = {step.slug for recipe in recipes for step in recipe.queries}
    return sorted(set(registry.queries) - used)


def recipe_devices() -> set[str]:
    """The device names the recipes pick, which a tester account needs."""
    names: set[str] = set()
    for recipe in RECIPES:
        chosen = [*recipe.trigger_fields.items(), *recipe.action_fields.items()]
        chosen += [item for step in recipe.queries for item in step.fields.items()]
        names.update(value for name, value in chosen if name in DEVICE_FIELDS and "{{" not in value)
        names.update(device for what, device, _ in recipe.cause if what != "add_device")
    return names


def recipe_cause(*, user: Any, recipe: Recipe) -> list[str]:
    """Make the recipe's trigger fire for `user`, through the device services as a device or the
    account page would; returns what was done, one line a step."""
    from django.utils import timezone

    from devices.models import Device, DeviceKind, EventSource, EventType
    from devices.services import NewEvent, device_create, device_events_record, device_switch

    done: list[str] = []
    for what, name, value in recipe.cause:
        if what == "add_device":
            suffix = timezone.now().strftime("%H%M%S%f")[:8]
            device = device_create(owner=user, name=f"{name} {suffix}", kind=DeviceKind.PLUG, room="Living room")
            done.append(f"added the plug “{device.name}”")
            continue
        found = Device.objects.filter(owner=user, name=name).first()
        if found is None:
            raise LookupError(f"{user} has no device named “{name}”: run `manage.py seed_demo` for the tester account")
        device = found
        if what in ("switch_on", "switch_off"):
            device_switch(device=device, on=what == "switch_on", source=EventSource.DEVICE)
        elif what == "motion":
            device_events_record(device=device, events=[NewEvent(type=EventType.MOTION)], source=EventSource.DEVICE)
        else:
            reading = NewEvent(type=EventType.TEMPERATURE, value=value)
            device_events_record(device=device, events=[reading], source=EventSource.DEVICE)
        done.append(_step_text((what, name, value)))
    return done
