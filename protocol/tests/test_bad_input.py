"""Any input gets a clear answer: every endpoint answers every kind of bad input with a 4xx and a message
a person understands, never a 500. Run on SQLite and on PostgreSQL: some inputs (NUL characters, numbers
past 64 bits, over-long identities) only fail on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from conftest import SERVICE_KEY
from devices.models import DeviceEvent, DeviceKind
from devices.services import device_api_key_issue, device_create
from protocol.access import ifttt_application_ensure

NUL = "\u0000"
DEEP = "[" * 5000 + "]" * 5000  # 10 KB of nesting
DEEP_OBJECT = '{"triggerFields": ' + DEEP + "}"
LONE_SURROGATE = '{"triggerFields": {"device": "\\ud800"}, "actionFields": {"device": "\\ud800"}}'


@dataclass(frozen=True)
class Target:
    """An endpoint and how to call it: `method`, `path`, the credentials it needs."""

    name: str
    method: str
    path: str
    auth: str  # "user", "service", "device"


def _targets(samples: dict[str, Any]) -> list[Target]:
    v1 = "/ifttt/v1"
    return [
        Target("status", "get", f"{v1}/status", "service"),
        Target("test/setup", "post", f"{v1}/test/setup", "service"),
        Target("user/info", "get", f"{v1}/user/info", "user"),
        Target("trigger", "post", f"{v1}/triggers/device_switched_on", "user"),
        Target("trigger without fields", "post", f"{v1}/triggers/new_device_added", "user"),
        Target("trigger options", "post", f"{v1}/triggers/device_switched_on/fields/device/options", "user"),
        Target("trigger validate", "post", f"{v1}/triggers/temperature_rises_above/fields/threshold/validate", "user"),
        Target("trigger device validate", "post", f"{v1}/triggers/device_switched_on/fields/device/validate", "user"),
        Target("contextual validate", "post", f"{v1}/triggers/temperature_rises_above/validate", "user"),
        Target("identity delete", "delete", f"{v1}/triggers/device_switched_on/trigger_identity/abc", "user"),
        Target("action", "post", f"{v1}/actions/switch_on", "user"),
        Target("action options", "post", f"{v1}/actions/switch_on/fields/device/options", "user"),
        Target("query", "post", f"{v1}/queries/device_history", "user"),
        Target("query options", "post", f"{v1}/queries/list_devices/fields/room/options", "user"),
        Target("webhook", "post", f"{v1}/webhooks/connection/enabled", "service"),
        Target("webhook fired", "post", f"{v1}/webhooks/trigger_subscription/fired", "service"),
        Target("webhook other", "post", f"{v1}/webhooks/connection/renamed", "service"),
        Target("device events", "post", "/api/v1/device/events", "device"),
    ]


@dataclass
class World:
    client: Client
    token: str
    device_key: str
    samples: dict[str, Any]
    user_id: str

    def headers(self, auth: str) -> dict[str, str]:
        return {
            "user": {"HTTP_AUTHORIZATION": f"Bearer {self.token}"},
            "service": {"HTTP_IFTTT_SERVICE_KEY": SERVICE_KEY},
            "device": {"HTTP_AUTHORIZATION": f"Device {self.device_key}"},
        }[auth]

    def call(self, target: Target, body: str | bytes, **extra: Any) -> Any:
        method = getattr(self.client, target.method)
        return method(target.path, data=body, content_type="application/json", **self.headers(target.auth), **extra)


@pytest.fixture
def world(client: Client, setup_data: dict[str, Any]) -> World:
    from accounts.models import User

    user = User.objects.get(is_ifttt_test_user=True)
    lamp = device_create(owner=user, name="Probe lamp", kind=DeviceKind.LIGHT, room="Lab")
    return World(
        client, setup_data["accessToken"], device_api_key_issue(device=lamp), setup_data["samples"], user.public_id
    )


def assert_clear_4xx(response: Any, *, path: str, status: int | None = None) -> str:
    """A 4xx, in IFTTT's envelope under /ifttt/ and DRF's body elsewhere, with a readable message."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    if status is not None:
        assert response.status_code == status, response.content[:500]
    body = response.json()
    message = body["errors"][0]["message"] if path.startswith("/ifttt/") else body["detail"]
    assert isinstance(message, str) and len(message) > 10, body
    assert "Traceback" not in message
    return message


# Bodies that are wrong for every endpoint that reads a body.
MALFORMED: dict[str, tuple[str | bytes, int]] = {
    "broken JSON": ('{"triggerFields": ', 400),
    "not UTF-8": (b'{"a": "\xff"}', 400),
    "a list": ("[1, 2]", 400),
    "nested 5000 deep": (DEEP_OBJECT, 400),
    "a lone surrogate": (LONE_SURROGATE, 400),
    "a NUL in a key": ('{"trigger\\u0000Fields": {}}', 400),
    "a NUL in a value": (json.dumps({"user": {"timezone": "UTC" + NUL}}), 400),
    "1e400": ('{"limit": 1e400, "value": 1e400}', 400),
    "NaN": ('{"limit": NaN}', 400),
}
BODY_TARGETS = [t for t in _targets({}) if t.method == "post" and t.name != "test/setup"]


@pytest.mark.parametrize("target", BODY_TARGETS, ids=lambda t: t.name)
@pytest.mark.parametrize("case", list(MALFORMED), ids=str)
def test_a_malformed_body_is_a_clear_400(world: World, target: Target, case: str) -> None:
    body, status = MALFORMED[case]
    response = world.call(target, body)
    assert_clear_4xx(response, path=target.path, status=status)


@pytest.mark.parametrize("target", BODY_TARGETS, ids=lambda t: t.name)
def test_an_oversize_body_is_a_413(world: World, target: Target, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 2000
    body = json.dumps({"padding": "x" * 5000})
    message = assert_clear_4xx(world.call(target, body), path=target.path, status=413)
    assert "2,000 bytes" in message


def _trigger_body(**extra: Any) -> dict[str, Any]:
    return {"triggerFields": {"device": "nope"}, "trigger_identity": "probe-identity", **extra}


# Endpoint-specific inputs, each (target name, body).
SPECIFIC: list[tuple[str, Callable[[World], Any]]] = [
    ("trigger", lambda w: _trigger_body(triggerFields={"device": {}})),
    ("trigger", lambda w: _trigger_body(triggerFields={"device": ["a"]})),
    ("trigger", lambda w: _trigger_body(triggerFields={"device": "x" + NUL})),
    ("trigger", lambda w: _trigger_body(trigger_identity="id" + NUL)),
    ("trigger", lambda w: _trigger_body(trigger_identity="i" * 256)),
    ("trigger", lambda w: _trigger_body(trigger_identity={"a": 1})),
    ("trigger", lambda w: _trigger_body(limit=2**63)),
    ("trigger", lambda w: _trigger_body(limit=-(2**63) - 1)),
    ("trigger", lambda w: _trigger_body(limit="lots")),
    ("trigger", lambda w: _trigger_body(limit=1.5)),
    ("trigger", lambda w: _trigger_body(limit={})),
    ("trigger", lambda w: {"triggerFields": "device"}),
    ("trigger validate", lambda w: {"value": {"a": 1}}),
    ("trigger validate", lambda w: {"value": "2" + NUL}),
    ("trigger device validate", lambda w: {"value": "x" + NUL}),
    ("trigger device validate", lambda w: {"value": ["a"]}),
    ("contextual validate", lambda w: {"values": {"device": {}, "threshold": []}}),
    ("contextual validate", lambda w: {"values": {"device": "a" + NUL, "threshold": "1"}}),
    ("contextual validate", lambda w: {"values": []}),
    ("action", lambda w: {"actionFields": {"device": "x" + NUL}}),
    ("action", lambda w: {"actionFields": {"device": {}}}),
    ("action", lambda w: {"actionFields": []}),
    ("action", lambda w: {"actionFields": {"device": "x"}, "ifttt_source": "nope"}),
    ("query", lambda w: {"queryFields": {"device": "x" + NUL}}),
    ("query", lambda w: {"queryFields": {"device": "x"}, "cursor": "c" + NUL}),
    ("query", lambda w: {"queryFields": {"device": "x"}, "cursor": {}}),
    ("query", lambda w: {"queryFields": {"device": "x"}, "limit": 2**63}),
    ("webhook", lambda w: {"data": {"user_id": "u" + NUL, "connection_id": "c"}}),
    ("webhook", lambda w: {"data": {"user_id": w.user_id, "connection_id": "c" + NUL}}),
    ("webhook", lambda w: {"data": {"user_id": w.user_id, "connection_id": "c"}, "sent_at": 10**30}),
    ("webhook", lambda w: {"data": {"user_id": w.user_id, "connection_id": "c"}, "sent_at": "soon"}),
    ("webhook", lambda w: {"data": {"user_id": w.user_id, "connection_id": "c"}, "event_data": []}),
    ("webhook", lambda w: {"data": {"user_id": w.user_id, "connection_id": "c" * 1000}}),
    ("webhook", lambda w: {"data": []}),
    ("webhook", lambda w: {"data": {"user_id": {}, "connection_id": "c"}}),
    ("webhook fired", lambda w: {"data": {"user_id": w.user_id, "connection_id": "c", "trigger_id": {}}}),
    (
        "webhook fired",
        lambda w: {
            "data": {"user_id": w.user_id, "connection_id": "c", "trigger_id": "t"},
            "event_data": {"ingredients": []},
        },
    ),
    ("webhook other", lambda w: {"data": {"user_id": "u" + NUL}}),
    ("device events", lambda w: {"type": {}}),
    ("device events", lambda w: {"type": ["switched_on"]}),
    ("device events", lambda w: {"events": [{"type": {}}]}),
    ("device events", lambda w: {"events": {}}),
    ("device events", lambda w: {"events": []}),
    ("device events", lambda w: {"events": [{"type": "switched_on"}] * 501}),
    ("device events", lambda w: {"events": ["switched_on"]}),
    ("device events", lambda w: {"type": "switched_on", "event_id": "e" + NUL}),
    ("device events", lambda w: {"type": "switched_on", "event_id": "e" * 101}),
    ("device events", lambda w: {"type": "switched_on", "event_id": 12}),
    ("device events", lambda w: {"type": "color_changed", "value": {}}),
    ("device events", lambda w: {"type": "color_changed", "value": "x" + NUL}),
    ("device events", lambda w: {"type": "temperature", "value": 21}),  # a light cannot report it
    ("device events", lambda w: {"type": "nope"}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": "2026-02-30T10:00:00Z"}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": "2026-13-01T10:00:00Z"}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": "2026-01-01T25:00:00Z"}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": "2026-01-01T10:00:00+99:00"}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": "2026-01-01T10:00:00"}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": "2999-01-01T10:00:00Z"}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": 1700000000}),
    ("device events", lambda w: {"type": "switched_on", "occurred_at": "yesterday" + NUL}),
]


@pytest.mark.parametrize(
    ("target_name", "make_body"), SPECIFIC, ids=[f"{name}-{i}" for i, (name, _) in enumerate(SPECIFIC)]
)
def test_a_bad_field_is_a_clear_4xx(world: World, target_name: str, make_body: Callable[[World], Any]) -> None:
    [target] = [t for t in _targets({}) if t.name == target_name]
    events_before = DeviceEvent.objects.count()
    response = world.call(target, json.dumps(make_body(world)))
    if "validate" in target.name and response.status_code == 200:
        # Validation answers what is wrong with a value as data, in IFTTT's shape.
        answers = response.json()["data"]
        answers = answers.values() if "valid" not in answers else [answers]
        assert any(a["valid"] is False and a["message"] for a in answers), answers
    else:
        assert_clear_4xx(response, path=target.path)
    assert DeviceEvent.objects.count() == events_before  # nothing half-written


@pytest.mark.parametrize(
    "value", ["1e400", "-1e400", "1" + "0" * 400, "1" * 5000], ids=["1e400", "-1e400", "10**400", "5000 digits"]
)
def test_a_device_value_past_any_float_is_a_clear_400(world: World, thermostat_key: str, value: str) -> None:
    response = world.client.post(
        "/api/v1/device/events",
        data='{"type": "temperature", "value": ' + value + "}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {thermostat_key}",
    )
    assert "too large" in assert_clear_4xx(response, path="/api/v1/device/events", status=400)


@pytest.fixture
def thermostat_key(world: World) -> str:
    from accounts.models import User

    owner = User.objects.get(public_id=world.user_id)
    return device_api_key_issue(
        device=device_create(owner=owner, name="Probe thermostat", kind=DeviceKind.THERMOSTAT, room="Lab")
    )


def test_a_nul_in_the_path_is_a_clear_4xx(world: World) -> None:
    path = "/ifttt/v1/triggers/device_switched_on/trigger_identity/ab%00cd"
    response = world.client.delete(path, **world.headers("user"))
    assert_clear_4xx(response, path=path, status=400)


@pytest.mark.parametrize("limit", [2**31, 2**63, 2**64, "9" * 40])
def test_a_huge_limit_is_capped(world: World, limit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("protocol.apis.MAX_LIMIT", 2)  # the test user has more events than this
    for path in ("/ifttt/v1/triggers/new_device_added", "/ifttt/v1/queries/list_devices"):
        response = world.call(
            Target("t", "post", path, "user"), json.dumps({"limit": limit, "queryFields": {"room": "*"}})
        )
        assert response.status_code == 200, response.content
        assert len(response.json()["data"]) == 2


@pytest.mark.parametrize("field", ["code", "refresh_token", "client_id", "client_secret", "redirect_uri"])
def test_a_nul_in_the_oauth_token_request_is_a_clear_400(client: Client, db: Any, field: str) -> None:
    ifttt_application_ensure()
    data = {
        "grant_type": "refresh_token" if field == "refresh_token" else "authorization_code",
        "code": "abc",
        "refresh_token": "abc",
        "client_id": settings.IFTTT_CLIENT_ID,
        "client_secret": settings.IFTTT_CLIENT_SECRET,
        "redirect_uri": settings.IFTTT_REDIRECT_URI,
    }
    data[field] = "x" + NUL + "y"
    response = client.post("/oauth/token/", data=data)
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "NUL" in body["error_description"]


def test_an_oversize_or_malformed_oauth_token_request_is_a_clear_4xx(client: Client, db: Any, settings: Any) -> None:
    ifttt_application_ensure()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = client.post("/oauth/token/", data="code=" + "x" * 5000, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413, response.content[:300]
    assert "2,000 bytes" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/ifttt/v1/status", "service"),
        ("/ifttt/v1/user/info", "user"),
        ("/api/v1/device/events", "device"),
        ("/oauth/authorize/", None),
        ("/api/schema/", None),
    ],
)
def test_a_nul_in_the_query_string_is_a_clear_400(world: World, path: str, auth: str | None) -> None:
    response = world.client.get(f"{path}?format=json%00", **(world.headers(auth) if auth else {}))
    assert response.status_code == 400, response.content[:300]
    assert b"NUL character" in response.content
