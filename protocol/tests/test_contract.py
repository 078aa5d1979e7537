"""Contract tests: every trigger, action and query in the registry, through HTTP, as IFTTT calls them.

IFTTT's endpoint tests are the contract, and `localifttt` is this project's copy of them: the first
tests here run it against this service, in-process, so a declaration whose samples do not give IFTTT
what it expects fails here. The tests after them are parametrised over the registry and check what
IFTTT's tests cannot see (the database side, other users' devices, the timeline after a new event).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings

from devices.models import DeviceEvent, DeviceKind, EventSource, EventType
from devices.services import device_create, device_switch
from localifttt.inprocess import service_in_thread
from localifttt.runner import run_checks
from localifttt.suite import CheckResult
from protocol.fields import device_field
from protocol.fixtures import sample_events
from protocol.registry import (
    ActionResult,
    ActionSpec,
    Ingredient,
    QueryPage,
    QuerySpec,
    TriggerSpec,
    iso,
    registry,
)
from triggers.models import TriggerIdentity

TRIGGERS = sorted(registry.triggers)
ACTIONS = sorted(registry.actions)
QUERIES = sorted(registry.queries)
SKIPPABLE = sorted(slug for slug, spec in registry.actions.items() if spec.skip_sample is not None)


def endpoint_checks() -> list[CheckResult]:
    """IFTTT's endpoint tests (this project's copy) against this service, served in-process."""
    with service_in_thread() as base_url:
        return run_checks(base_url=base_url, service_key=settings.IFTTT_SERVICE_KEY)


def failures(results: list[CheckResult]) -> list[str]:
    return [f"{r.title}: {r.message}" for r in results if r.outcome == "failed"]


def checked(results: list[CheckResult], kind: str) -> set[str]:
    """The slugs of `kind` ("Triggers", "Actions", "Queries") that at least one check exercised."""
    return {r.path[1] for r in results if r.path[0] == kind and r.outcome == "passed"}


@pytest.mark.django_db(transaction=True)
def test_the_endpoint_tests_pass_for_every_declaration() -> None:
    results = endpoint_checks()
    assert not failures(results), "\n".join(failures(results))
    assert checked(results, "Triggers") == set(registry.triggers)
    assert checked(results, "Actions") == set(registry.actions)
    assert checked(results, "Queries") == set(registry.queries)


@contextmanager
def declared(*specs: TriggerSpec | ActionSpec | QuerySpec) -> Iterator[None]:
    """The registry with `specs` added, for the length of the block."""
    for spec in specs:
        registry.add(spec)
    try:
        yield
    finally:
        for spec in specs:
            for table in (registry.triggers, registry.actions, registry.queries):
                if table.get(spec.slug) is spec:
                    del table[spec.slug]


def _toggles(user: Any, fields: Any) -> Any:
    types = (EventType.SWITCHED_ON, EventType.SWITCHED_OFF)
    return DeviceEvent.objects.filter(owner=user, device__public_id=fields["device"], type__in=types).order_by(
        "-occurred_at", "-id"
    )


def _rooms(user: Any, fields: Any, limit: int, after: Any) -> QueryPage:
    rooms = sorted({d.room for d in user.devices.all()})
    start = (after or {}).get("index", 0)
    page = rooms[start : start + limit]
    more = start + limit < len(rooms)
    return QueryPage(rows=[{"room": r} for r in page], after={"index": start + limit} if more else None)


def _flash(user: Any, fields: Any) -> ActionResult:
    device = user.devices.get(public_id=fields["device"])
    return ActionResult(device=device, event=device_switch(device=device, on=True, source=EventSource.IFTTT))


THROWAWAY_TRIGGER = TriggerSpec(
    slug="throwaway_device_toggled",
    label="Device toggled",
    description="This trigger fires every time the device you choose is switched on or off.",
    fields=(device_field(kinds=(DeviceKind.LIGHT,)),),
    ingredients=(Ingredient("device_name", "Device name", "Desk lamp"), Ingredient("at", "At", "2026-11-04", "date")),
    matches=lambda event, fields: event.type in (EventType.SWITCHED_ON, EventType.SWITCHED_OFF)
    and event.device.public_id == fields.get("device"),
    history=_toggles,
    render=lambda event, fields: {"device_name": event.device.name, "at": iso(event.occurred_at)},
    sample=lambda fx: {"device": fx.light.public_id},
    sample_events=lambda fx: sample_events(fx.light, EventType.SWITCHED_ON, EventType.SWITCHED_OFF),
    event_types=(EventType.SWITCHED_ON, EventType.SWITCHED_OFF),
)
THROWAWAY_ACTION = ActionSpec(
    slug="throwaway_flash",
    label="Flash a light",
    description="This action switches the light you choose on.",
    fields=(device_field(kinds=(DeviceKind.LIGHT,)),),
    run=_flash,
    sample=lambda fx: {"device": fx.light.public_id},
)
THROWAWAY_QUERY = QuerySpec(
    slug="throwaway_rooms",
    label="List rooms",
    description="This query lists the rooms of your devices.",
    fields=(),
    ingredients=(Ingredient("room", "Room", "Office"),),
    run=_rooms,
    sample=lambda fx: {},
)


@pytest.mark.django_db(transaction=True)
def test_a_new_declaration_alone_passes_the_whole_contract() -> None:
    """Declaring a trigger, an action and a query is all it takes: test/setup gives the new trigger its
    sample history (on a deployment whose test account already exists), and IFTTT's tests pass."""
    endpoint_checks()  # the test account exists before the new trigger is declared
    with declared(THROWAWAY_TRIGGER, THROWAWAY_ACTION, THROWAWAY_QUERY):
        results = endpoint_checks()
    assert not failures(results), "\n".join(failures(results))
    assert "throwaway_device_toggled" in checked(results, "Triggers")
    assert "throwaway_flash" in checked(results, "Actions")
    assert "throwaway_rooms" in checked(results, "Queries")


@pytest.mark.django_db(transaction=True)
def test_a_declaration_without_sample_history_fails_the_contract() -> None:
    """A trigger whose timeline stays empty must fail: the contract cannot pass on nothing."""
    empty = TriggerSpec(
        **{
            **THROWAWAY_TRIGGER.__dict__,
            "slug": "throwaway_never_fires",
            "history": lambda user, fields: DeviceEvent.objects.none(),
            "sample_events": lambda fx: [],
        },
    )
    with declared(empty):
        results = endpoint_checks()
    assert any(r.path[:2] == ("Triggers", "throwaway_never_fires") for r in results if r.outcome == "failed")


def poll(ifttt: Any, slug: str, fields: dict[str, Any] | None, **body: Any) -> Any:
    payload = {"trigger_identity": f"identity-{slug}", "user": {"timezone": "Europe/London"}, **body}
    if fields is not None:
        payload["triggerFields"] = fields
    return ifttt.post(f"/ifttt/v1/triggers/{slug}", payload)


@pytest.mark.parametrize("slug", TRIGGERS)
def test_trigger_ids_are_stable_and_extra_data_is_ignored(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["triggers"][slug]
    first = poll(ifttt, slug, fields).json()["data"]
    assert len(first) >= 3, f"test/setup left {slug}'s sample timeline with {len(first)} events"
    again = poll(ifttt, slug, {**fields, "unexpected_field": "x"}, surprise={"a": 1}, ifttt_source={"id": "2"})
    assert again.status_code == 200
    assert [i["meta"]["id"] for i in again.json()["data"]] == [i["meta"]["id"] for i in first]
    # Polling without an identity (IFTTT's docs show such a request) answers the same timeline.
    no_identity = ifttt.post(f"/ifttt/v1/triggers/{slug}", {"triggerFields": fields})
    assert no_identity.status_code == 200
    assert [i["meta"]["id"] for i in no_identity.json()["data"]] == [i["meta"]["id"] for i in first]


@pytest.mark.parametrize("slug", TRIGGERS)
def test_trigger_needs_a_valid_token(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["triggers"][slug]
    for headers in ({"HTTP_AUTHORIZATION": "Bearer not-a-token"}, {"HTTP_AUTHORIZATION": ""}):
        response = ifttt.client.post(
            f"/ifttt/v1/triggers/{slug}", data={"triggerFields": fields}, content_type="application/json", **headers
        )
        assert response.status_code == 401
        assert response.json()["errors"][0]["message"]


@pytest.mark.parametrize("slug", TRIGGERS)
def test_trigger_identity_is_recorded_and_deleted(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["triggers"][slug]
    poll(ifttt, slug, fields)
    identity = TriggerIdentity.objects.get(identity=f"identity-{slug}")
    assert identity.trigger_slug == slug and identity.fields == fields
    assert identity.first_seen_at and identity.last_polled_at and identity.deleted_at is None

    response = ifttt.delete(f"/ifttt/v1/triggers/{slug}/trigger_identity/identity-{slug}")
    assert response.status_code == 200
    identity.refresh_from_db()
    assert identity.deleted_at is not None
    # Deleting again, or deleting an identity never seen, is harmless.
    assert ifttt.delete(f"/ifttt/v1/triggers/{slug}/trigger_identity/identity-{slug}").status_code == 200
    assert ifttt.delete(f"/ifttt/v1/triggers/{slug}/trigger_identity/never-seen").status_code == 200
    # An Applet that uses it again brings it back, with its timeline.
    assert len(poll(ifttt, slug, fields).json()["data"]) >= 3
    identity.refresh_from_db()
    assert identity.deleted_at is None


@pytest.mark.parametrize("path", ["validate", "fields/validate"])
@pytest.mark.parametrize("slug", [s for s in TRIGGERS if registry.triggers[s].fields])
def test_contextual_validation_on_both_paths(ifttt: Any, setup_data: dict[str, Any], slug: str, path: str) -> None:
    fields = setup_data["samples"]["triggers"][slug]
    url = f"/ifttt/v1/triggers/{slug}/{path}"
    good = ifttt.post(url, {"values": fields})
    assert good.status_code == 200
    assert good.json()["data"] == {name: {"valid": True} for name in fields}
    bad = ifttt.post(url, {"values": {name: "nonsense-value" for name in fields}})
    assert bad.status_code == 200
    for name in fields:
        assert bad.json()["data"][name]["valid"] is False
        assert bad.json()["data"][name]["message"]


@pytest.mark.parametrize("slug", ACTIONS)
def test_action_on_another_users_device_is_skipped(
    ifttt: Any, setup_data: dict[str, Any], make_user: Any, slug: str
) -> None:
    fields = dict(setup_data["samples"]["actions"][slug])
    device_field = registry.actions[slug].fields[0].slug
    from devices.models import Device

    own = Device.objects.get(public_id=fields[device_field])
    foreign = device_create(owner=make_user("mallory"), name="Not yours", kind=own.kind, room="Elsewhere")
    fields[device_field] = foreign.public_id
    response = ifttt.post(f"/ifttt/v1/actions/{slug}", {"actionFields": fields})
    assert response.status_code == 400
    assert response.json()["errors"][0]["status"] == "SKIP"
    foreign.refresh_from_db()
    assert foreign.events.count() == 1  # only its device_added: nothing was changed


@pytest.mark.parametrize("slug", QUERIES)
def test_query_rejects_forged_and_foreign_cursors(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["queries"][slug]
    forged = ifttt.post(f"/ifttt/v1/queries/{slug}", {"queryFields": fields, "cursor": "eyJxIjoiaGFjayJ9:abc:def"})
    assert forged.status_code == 400
    assert "cursor" in forged.json()["errors"][0]["message"]
    other = "device_history" if slug != "device_history" else "list_devices"
    first = ifttt.post(
        f"/ifttt/v1/queries/{other}", {"queryFields": setup_data["samples"]["queries"][other], "limit": 1}
    )
    foreign_cursor = first.json()["cursor"]
    response = ifttt.post(f"/ifttt/v1/queries/{slug}", {"queryFields": fields, "cursor": foreign_cursor})
    assert response.status_code == 400


def test_a_new_event_is_on_the_timeline_at_once(ifttt: Any, setup_data: dict[str, Any]) -> None:
    fields = setup_data["samples"]["triggers"]["device_switched_on"]
    before = poll(ifttt, "device_switched_on", fields).json()["data"]
    from devices.models import Device

    lamp = Device.objects.get(public_id=fields["device"])
    device_switch(device=lamp, on=False, source=EventSource.ACCOUNT)
    event = device_switch(device=lamp, on=True, source=EventSource.ACCOUNT)
    assert event is not None
    after = poll(ifttt, "device_switched_on", fields).json()["data"]
    assert after[0]["meta"]["id"] == event.public_id
    assert [i["meta"]["id"] for i in after[1:]] == [i["meta"]["id"] for i in before]
