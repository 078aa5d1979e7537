"""Contract tests: every trigger, action and query in the registry, through HTTP, as IFTTT calls them.

Parametrised over the registry, so a new declaration is exercised by all of these without a line
of test code; one whose samples don't produce what IFTTT's endpoint tests expect fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from devices.models import EventSource
from devices.services import device_create, device_switch
from iftttsvc.registry import registry
from triggers.models import TriggerIdentity

TRIGGERS = sorted(registry.triggers)
ACTIONS = sorted(registry.actions)
QUERIES = sorted(registry.queries)
SKIPPABLE = sorted(slug for slug, spec in registry.actions.items() if spec.skip_sample is not None)


def _dropdowns(table: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((slug, f.slug) for slug, spec in table.items() for f in spec.fields if f.options is not None)


def poll(ifttt: Any, slug: str, fields: dict[str, Any] | None, **body: Any) -> Any:
    payload = {"trigger_identity": f"identity-{slug}", "user": {"timezone": "Europe/London"}, **body}
    if fields is not None:
        payload["triggerFields"] = fields
    return ifttt.post(f"/ifttt/v1/triggers/{slug}", payload)


def test_the_catalog_is_the_products() -> None:
    assert (
        sorted(
            [
                "device_switched_on",
                "device_switched_off",
                "temperature_rises_above",
                "motion_detected",
                "new_device_added",
            ]
        )
        == TRIGGERS
    )
    assert sorted(["switch_on", "switch_off", "set_temperature", "set_light_color"]) == ACTIONS
    assert sorted(["list_devices", "device_history", "current_temperature"]) == QUERIES


@pytest.mark.parametrize("slug", TRIGGERS)
def test_trigger_returns_at_least_three_items_newest_first(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    response = poll(ifttt, slug, setup_data["samples"]["triggers"][slug])
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    items = response.json()["data"]
    assert 3 <= len(items) <= 50
    declared = {i.slug for i in registry.triggers[slug].ingredients} | {"meta"}
    for item in items:
        assert set(item) == declared
        assert isinstance(item["meta"]["id"], str) and item["meta"]["id"]
        assert isinstance(item["meta"]["timestamp"], int)
    timestamps = [item["meta"]["timestamp"] for item in items]
    assert timestamps == sorted(timestamps, reverse=True)
    assert len({item["meta"]["id"] for item in items}) == len(items)


@pytest.mark.parametrize("slug", TRIGGERS)
def test_trigger_limit(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["triggers"][slug]
    assert poll(ifttt, slug, fields, limit=0).json() == {"data": []}
    full = poll(ifttt, slug, fields).json()["data"]
    for limit in (1, 2):
        items = poll(ifttt, slug, fields, limit=limit).json()["data"]
        assert items == full[:limit]


@pytest.mark.parametrize("slug", TRIGGERS)
def test_trigger_ids_are_stable_and_extra_data_is_ignored(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["triggers"][slug]
    first = poll(ifttt, slug, fields).json()["data"]
    again = poll(ifttt, slug, {**fields, "unexpected_field": "x"}, surprise={"a": 1}, ifttt_source={"id": "2"})
    assert again.status_code == 200
    assert [i["meta"]["id"] for i in again.json()["data"]] == [i["meta"]["id"] for i in first]
    # Polling without an identity (IFTTT's docs show such a request) answers the same timeline.
    no_identity = ifttt.post(f"/ifttt/v1/triggers/{slug}", {"triggerFields": fields})
    assert [i["meta"]["id"] for i in no_identity.json()["data"]] == [i["meta"]["id"] for i in first]


@pytest.mark.parametrize("slug", [s for s in TRIGGERS if registry.triggers[s].fields])
def test_trigger_without_trigger_fields_is_a_400(ifttt: Any, slug: str) -> None:
    response = poll(ifttt, slug, None)
    assert response.status_code == 400
    assert "triggerFields" in response.json()["errors"][0]["message"]


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


@pytest.mark.parametrize(("slug", "field"), _dropdowns(registry.triggers))
def test_trigger_field_options(ifttt: Any, setup_data: dict[str, Any], slug: str, field: str) -> None:
    response = ifttt.post(f"/ifttt/v1/triggers/{slug}/fields/{field}/options", {})
    assert response.status_code == 200
    options = response.json()["data"]
    assert_options_shape(options)
    values = _values(options)
    assert setup_data["samples"]["triggers"][slug][field] in values


@pytest.mark.parametrize("slug", sorted(s for s, spec in registry.triggers.items() if spec.validation_samples))
def test_trigger_field_validation(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    samples = setup_data["samples"]["triggerFieldValidations"][slug]
    for field, pair in samples.items():
        url = f"/ifttt/v1/triggers/{slug}/fields/{field}/validate"
        valid = ifttt.post(url, {"value": pair["valid"]})
        assert valid.status_code == 200 and valid.json() == {"data": {"valid": True}}
        invalid = ifttt.post(url, {"value": pair["invalid"]})
        assert invalid.status_code == 200
        assert invalid.json()["data"]["valid"] is False
        assert invalid.json()["data"]["message"]


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
def test_action_runs_with_its_sample(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    response = ifttt.post(f"/ifttt/v1/actions/{slug}", {"actionFields": setup_data["samples"]["actions"][slug]})
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert len(data) == 1 and isinstance(data[0]["id"], str) and data[0]["id"]
    assert data[0]["url"].startswith("https://smarthome.example/")


@pytest.mark.parametrize("slug", SKIPPABLE)
def test_action_record_skipping(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["actionRecordSkipping"][slug]
    response = ifttt.post(f"/ifttt/v1/actions/{slug}", {"actionFields": fields})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["status"] == "SKIP"
    assert len(error["message"]) > 10


@pytest.mark.parametrize("slug", ACTIONS)
def test_action_without_action_fields_is_a_400_not_a_skip(ifttt: Any, slug: str) -> None:
    for body in ({}, {"actionFields": "device"}, {"actionFields": {}}):
        response = ifttt.post(f"/ifttt/v1/actions/{slug}", body)
        assert response.status_code == 400
        assert "status" not in response.json()["errors"][0]


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


@pytest.mark.parametrize(("slug", "field"), _dropdowns(registry.actions))
def test_action_field_options(ifttt: Any, setup_data: dict[str, Any], slug: str, field: str) -> None:
    response = ifttt.post(f"/ifttt/v1/actions/{slug}/fields/{field}/options", {})
    assert response.status_code == 200
    assert_options_shape(response.json()["data"])
    assert setup_data["samples"]["actions"][slug][field] in _values(response.json()["data"])


@pytest.mark.parametrize("slug", QUERIES)
def test_query_cursor_walk(ifttt: Any, setup_data: dict[str, Any], slug: str) -> None:
    fields = setup_data["samples"]["queries"][slug]
    everything = ifttt.post(f"/ifttt/v1/queries/{slug}", {"queryFields": fields})
    assert everything.status_code == 200, everything.content
    assert "cursor" not in everything.json()
    expected = everything.json()["data"]
    assert expected, "the query sample returns no rows"
    declared = {i.slug for i in registry.queries[slug].ingredients}
    assert all(set(row) == declared for row in expected)

    rows: list[Any] = []
    cursor = None
    for _ in range(len(expected) + 2):
        body: dict[str, Any] = {"queryFields": fields, "limit": 1}
        if cursor:
            body["cursor"] = cursor
        page = ifttt.post(f"/ifttt/v1/queries/{slug}", body).json()
        rows.extend(page["data"])
        cursor = page.get("cursor")
        if not cursor:
            break
    assert rows == expected


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


@pytest.mark.parametrize(("slug", "field"), _dropdowns(registry.queries))
def test_query_field_options(ifttt: Any, setup_data: dict[str, Any], slug: str, field: str) -> None:
    response = ifttt.post(f"/ifttt/v1/queries/{slug}/fields/{field}/options", {})
    assert response.status_code == 200
    assert_options_shape(response.json()["data"])
    assert setup_data["samples"]["queries"][slug][field] in _values(response.json()["data"])


@pytest.mark.parametrize(
    "path",
    [
        "/ifttt/v1/triggers/no_such_trigger",
        "/ifttt/v1/actions/no_such_action",
        "/ifttt/v1/queries/no_such_query",
        "/ifttt/v1/triggers/device_switched_on/fields/no_such_field/options",
        "/ifttt/v1/no/such/endpoint",
    ],
)
def test_unknown_slugs_are_404s_in_the_envelope(ifttt: Any, path: str) -> None:
    response = ifttt.post(path, {"triggerFields": {}, "actionFields": {}, "queryFields": {}})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json()["errors"][0]["message"]


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


def assert_options_shape(options: list[dict[str, Any]]) -> None:
    assert isinstance(options, list) and options
    for option in options:
        assert isinstance(option["label"], str)
        if "values" in option:
            assert "value" not in option
            for child in option["values"]:
                assert set(child) == {"label", "value"}, "groups are one level deep"
        else:
            assert isinstance(option["value"], str)


def _values(options: list[dict[str, Any]]) -> set[str]:
    found = set()
    for option in options:
        for child in option.get("values", [option]):
            found.add(child["value"])
    return found
