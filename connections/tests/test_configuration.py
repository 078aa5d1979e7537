"""Field configuration as IFTTT's connection tool describes it (the Hue colour example), applied to runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from connections.client import ConnectInvalidParameters
from connections.models import Connection, ConnectionField, FiredTrigger, ScriptRun, UserConnection, WebhookDelivery
from connections.services import connection_action_run, fired_trigger_script_run, script_test_run

pytestmark = pytest.mark.django_db

CHANGE = "hue.change_color"


def rules(connection, color: dict, feature_id: str = "lights") -> None:
    ConnectionField.objects.create(
        connection=connection,
        feature_id=feature_id,
        kind="action",
        step_id=CHANGE,
        field_id="lights",
        visibility="user",
    )
    ConnectionField.objects.create(
        connection=connection, feature_id=feature_id, kind="action", step_id=CHANGE, field_id="color", **color
    )


@pytest.fixture
def world(make_user, connect_api):
    user = make_user("alice")
    connect_api.enabled_users.add(user.public_id)
    connection = Connection.objects.create(connection_id="conn-1")
    state = UserConnection.objects.create(connection=connection, user=user, status="enabled")
    return connection, state, connect_api


def in_async(body: str) -> str:
    """A script body that awaits its calls, as Node 12 runs one: inside an async function."""
    return f"(async () => {{\n{body}\n}})();"


def fire(state, body: str, feature_id: str = "lights") -> ScriptRun:
    connection = state.connection
    connection.script = in_async(body)
    connection.save()
    delivery = WebhookDelivery.objects.create(payload_key=f"k{FiredTrigger.objects.count()}", type="t", event="e")
    fired = FiredTrigger.objects.create(
        delivery=delivery,
        user_connection=state,
        trigger_id="twitch.stream_started",
        feature_id=feature_id,
        user_feature_id="uf-1",
        fired_at=datetime.now(tz=UTC),
        script_state="pending",
    )
    run = fired_trigger_script_run(fired_trigger_id=fired.pk)
    assert run is not None
    return run


def sent_fields(connect_api) -> list:
    return [r.body.get("fields") for r in connect_api.calls("POST", "/run")]


def test_set_by_you_fixed_blue(world):
    """“Change a user's Hue lights to blue”: the colour is ours; a run may not change it."""
    connection, state, connect_api = world
    rules(connection, {"visibility": "set_by_you", "value": "blue"})
    run = fire(state, 'await runAction("hue.change_color");')
    assert run.outcome == "succeeded", run.error
    refused = fire(
        state,
        'const r = await runAction("hue.change_color", {fields: {color: "purple"}});\n'
        "console.log(r.statusCode, r.responseBody.details[0].parameter, r.responseBody.details[0].message);",
    )
    assert refused.logs == [
        {"level": "log", "message": "422 /fields/color set by the connection to 'blue'; a run may not change it."}
    ]
    # The user's own choice of lights is left to IFTTT: only our value is sent, and the refused call not at all.
    assert sent_fields(connect_api) == [{"color": "blue"}]


def test_customizable_by_the_user_with_a_default(world):
    """“… to their favourite colour”: the person chose; blue was only the default they were offered."""
    connection, state, connect_api = world
    rules(connection, {"visibility": "user", "value": "blue"})
    fire(state, 'await runAction("hue.change_color");')
    fire(state, 'await runAction("hue.change_color", {fields: {color: "purple"}});')
    assert sent_fields(connect_api) == [None]


def test_set_by_you_default_overridden_per_run(world):
    """“… dynamically from your mobile app”: blue unless the run says otherwise."""
    connection, state, connect_api = world
    rules(connection, {"visibility": "set_by_you", "value": "blue", "overridable": True})
    fire(state, 'await runAction("hue.change_color");')
    fire(state, 'await runAction("hue.change_color", {fields: {color: "purple"}});')
    assert sent_fields(connect_api) == [{"color": "blue"}, {"color": "purple"}]


def test_a_field_the_step_does_not_have_is_refused(world):
    connection, state, connect_api = world
    rules(connection, {"visibility": "set_by_you", "value": "blue", "overridable": True})
    run = fire(
        state, 'const r = await runAction("hue.change_color", {fields: {colour: "red"}}); console.log(r.statusCode);'
    )
    assert run.logs == [{"level": "log", "message": "422"}]
    assert sent_fields(connect_api) == []


def test_the_feature_whose_trigger_fired_decides(world):
    connection, state, connect_api = world
    rules(connection, {"visibility": "set_by_you", "value": "blue"}, feature_id="calm")
    rules(connection, {"visibility": "set_by_you", "value": "red"}, feature_id="alert")
    fire(state, 'await runAction("hue.change_color");', feature_id="alert")
    fire(state, 'await runAction("hue.change_color");', feature_id="calm")
    # A feature without this action takes the connection's first that has it, as IFTTT does.
    fire(state, 'await runAction("hue.change_color");', feature_id="other")
    assert sent_fields(connect_api) == [{"color": "red"}, {"color": "blue"}, {"color": "red"}]


def test_a_step_without_configuration_passes_fields_through(world):
    _, state, connect_api = world
    fire(state, 'await runAction("sms.send_me_text", {fields: {message: "hi"}});')
    assert sent_fields(connect_api) == [{"message": "hi"}]


def test_the_backend_gets_the_same_rules(world):
    connection, state, connect_api = world
    rules(connection, {"visibility": "set_by_you", "value": "blue"})
    connection_action_run(connection=connection, user=state.user, action_id=CHANGE)
    with pytest.raises(ConnectInvalidParameters) as info:
        connection_action_run(connection=connection, user=state.user, action_id=CHANGE, fields={"color": "purple"})
    assert info.value.details[0]["parameter"] == "/fields/color"
    assert sent_fields(connect_api) == [{"color": "blue"}]


def test_a_test_run_shows_a_refused_override(world):
    connection, _, connect_api = world
    rules(connection, {"visibility": "set_by_you", "value": "blue"})
    run = script_test_run(
        connection=connection,
        script=in_async(
            'const r = await runAction("hue.change_color", {fields: {color: "red"}}); console.log(r.statusCode);'
        ),
        trigger_id="t.x",
        ingredients={},
        feature_name="lights",
    )
    assert run.logs == [{"level": "log", "message": "422"}]
    assert connect_api.requests == []


# --- the admin ---------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client.force_login(admin)
    return client


def _form(**row):
    data = {
        "connection_id": "conn-1",
        "name": "Lights",
        "script_enabled": "on",
        "script": "",
        "configuration": "{}",
        "fields-TOTAL_FORMS": "1",
        "fields-INITIAL_FORMS": "0",
        "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
    }
    defaults = {"feature_id": "f-1", "kind": "action", "visibility": "set_by_you", "position": "0"}
    data.update({f"fields-0-{name}": value for name, value in {**defaults, **row}.items()})
    return data


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"step_id": "smarthome.set_light_color", "field_id": "colour", "value": "blue"}, "has no field “colour”"),
        ({"step_id": "smarthome.dim_lights", "field_id": "lights", "value": "x"}, "This service has no action"),
        ({"step_id": "smarthome.set_light_color", "field_id": "color", "value": ""}, "needs a value"),
        ({"step_id": "Set colour", "field_id": "color", "value": "blue"}, "service.slug"),
        (
            {
                "kind": "trigger",
                "step_id": "smarthome.temperature_rises_above",
                "field_id": "threshold",
                "value": "500",
            },
            "The temperature threshold",
        ),
    ],
)
def test_the_admin_explains_a_wrong_field_rule(staff, row, message):
    connection = Connection.objects.create(connection_id="conn-1")
    page = staff.post(reverse("admin:connections_connection_change", args=[connection.pk]), _form(**row))
    assert page.status_code == 200
    assert message in page.content.decode()
    assert not ConnectionField.objects.exists()


def test_the_admin_saves_and_shows_the_rules_and_the_api_logs(staff, world):
    connection, state, _ = world
    url = reverse("admin:connections_connection_change", args=[connection.pk])
    row = {"step_id": "smarthome.set_light_color", "field_id": "color", "value": "blue", "overridable": "on"}
    page = staff.post(url, _form(**row))
    assert page.status_code == 302, page.content.decode()[:3000]
    assert ConnectionField.objects.get().rule == "Set by you: 'blue' (default; a run may override)"
    connection_action_run(connection=connection, user=state.user, action_id="sms.send_me_text")
    html = staff.get(url).content.decode()
    assert "Set by you: &#x27;blue&#x27; (default; a run may override)" in html
    assert 'id="api-logs"' in html
    assert "POST /v2/connections/conn-1/actions/sms.send_me_text/run" in html
    logs = staff.get(reverse("admin:connections_connectapicall_changelist") + "?connection_id=conn-1")
    assert logs.status_code == 200 and "sms.send_me_text" in logs.content.decode()
