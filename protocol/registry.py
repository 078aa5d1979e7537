"""The catalog registry: one declaration per trigger, action and query.

Each protocol app declares its part of the catalog in its `catalog.py` (`triggers/catalog.py`, …)
by calling `registry.add(...)`. Routing, the test/setup samples, the OpenAPI schema and the contract
tests all read from here, so adding a trigger is one declaration in one file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from devices.models import Device, DeviceEvent
    from devices.services import NewEvent

    from .fixtures import EndpointTestsFixture

Fields = Mapping[str, Any]


class TimelineDevice(Protocol):
    @property
    def public_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def room(self) -> str: ...
    @property
    def kind(self) -> str: ...


class TimelineEvent(Protocol):
    """What rendering a trigger's ingredients reads of an event: a DeviceEvent, or the lighter row a
    poll builds from its feed query (triggers.selectors.FeedEvent)."""

    @property
    def public_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def device(self) -> TimelineDevice: ...


# A dropdown option: {"label", "value"}, or a group {"label", "values": [options]} (one level deep).
Option = dict[str, Any]


@dataclass(frozen=True)
class FieldSpec:
    """A trigger, action or query field.

    A dropdown has `options(user)`; its value is valid if it is one of them. A text field may have
    `validate(user, value)` returning a message for the user, or None when the value is fine.
    """

    slug: str
    label: str
    kind: Literal["dropdown", "text"] = "dropdown"
    helper_text: str = ""
    options: Callable[[Any], list[Option]] | None = None
    validate: Callable[[Any, Any], str | None] | None = None
    required: bool = True

    def check(self, user: Any, value: Any) -> str | None:
        """Why `value` is not acceptable for this user, or None."""
        if value is None or value == "":
            return f"Choose a value for “{self.label}”." if self.required else None
        if not isinstance(value, str):
            return f"“{self.label}” must be text, not {type(value).__name__}."
        if self.validate is not None:
            return self.validate(user, value)
        if self.options is not None and value not in option_values(self.options(user)):
            return f"“{value}” is not one of your choices for “{self.label}”. Pick one from the list."
        return None


def option_values(options: Sequence[Option]) -> set[str]:
    values: set[str] = set()
    for option in options:
        if "values" in option:
            values.update(child["value"] for child in option["values"])
        else:
            values.add(option["value"])
    return values


@dataclass(frozen=True)
class Ingredient:
    slug: str
    label: str
    example: str
    kind: Literal["string", "number", "date", "boolean"] = "string"


@dataclass(frozen=True)
class Declaration:
    slug: str
    label: str
    description: str
    fields: tuple[FieldSpec, ...]

    def field(self, slug: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.slug == slug), None)

    def check_fields(self, user: Any, values: Fields) -> dict[str, str]:
        """Per-field problems with `values`: {field slug: message}. Empty when all are valid."""
        problems = {}
        for spec in self.fields:
            message = spec.check(user, values.get(spec.slug))
            if message:
                problems[spec.slug] = message
        return problems


@dataclass(frozen=True)
class TriggerSpec(Declaration):
    ingredients: tuple[Ingredient, ...]
    # Does this new event belong on the timeline of an identity with these (valid) fields?
    matches: Callable[[DeviceEvent, Fields], bool]
    # The matching history, newest first, from an index shaped like the query; used once to
    # backfill a new identity's feed and for polls that carry no trigger_identity.
    history: Callable[[Any, Fields], QuerySet[DeviceEvent]]
    # The ingredients of one event (keys: the ingredient slugs).
    render: Callable[[TimelineEvent, Fields], dict[str, Any]]
    # test/setup: valid field values for the test user's fixture, and a valid/invalid pair per
    # validated field.
    sample: Callable[[EndpointTestsFixture], dict[str, Any]]
    # test/setup: events that put at least three items on the timeline `sample` selects, as
    # (device, event) pairs. They are recorded once per deployment, only while that timeline has
    # fewer than three, so a trigger added to a running service gets its history on the next setup.
    sample_events: Callable[[EndpointTestsFixture], Sequence[tuple[Device, NewEvent]]]
    # The kinds of domain event that can reach this trigger's timeline: what the diagnosis shows as
    # "latest events" and the account page's activity counts for it.
    event_types: tuple[str, ...] = ()
    validation_samples: Callable[[EndpointTestsFixture], dict[str, dict[str, Any]]] | None = None


@dataclass(frozen=True)
class ActionResult:
    """What an action changed: the device it acted on and the event it recorded, if any."""

    device: Device
    event: DeviceEvent | None = None


@dataclass(frozen=True)
class ActionSpec(Declaration):
    # Runs the action for a user with (valid) fields; raises `Skip` when it can never succeed.
    run: Callable[[Any, Fields], ActionResult]
    sample: Callable[[EndpointTestsFixture], dict[str, Any]]
    # test/setup: field values that must be answered with a SKIP.
    skip_sample: Callable[[EndpointTestsFixture], dict[str, Any]] | None = None


@dataclass(frozen=True)
class QueryPage:
    rows: list[dict[str, Any]]
    # Where the next page starts (encoded into an opaque cursor), or None on the last page.
    after: dict[str, Any] | None


@dataclass(frozen=True)
class QuerySpec(Declaration):
    ingredients: tuple[Ingredient, ...]
    # Runs the query: (user, fields, limit, after) -> one page.
    run: Callable[[Any, Fields, int, dict[str, Any] | None], QueryPage]
    sample: Callable[[EndpointTestsFixture], dict[str, Any]]


@dataclass
class Registry:
    triggers: dict[str, TriggerSpec] = field(default_factory=dict)
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    queries: dict[str, QuerySpec] = field(default_factory=dict)
    catalogs: tuple[str, ...] = ("triggers.catalog", "actions.catalog", "queries.catalog")

    def add(self, spec: TriggerSpec | ActionSpec | QuerySpec) -> None:
        table: dict[str, Any] = (
            self.triggers
            if isinstance(spec, TriggerSpec)
            else self.actions
            if isinstance(spec, ActionSpec)
            else self.queries
        )
        if spec.slug in table:
            raise ValueError(f"{type(spec).__name__} {spec.slug!r} is declared twice")
        table[spec.slug] = spec

    def autodiscover(self) -> None:
        for module in self.catalogs:
            importlib.import_module(module)


registry = Registry()


def iso(moment: datetime | None) -> str | None:
    """W3C ISO 8601 with a UTC offset, as IFTTT wants dates in ingredients."""
    return moment.isoformat(timespec="seconds") if moment is not None else None
