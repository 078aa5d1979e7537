"""The poll's hot path has two forms: one PostgreSQL statement, and the ORM (SQLite). Both must give
the same answer for the same data, including every way a token or an identity can be refused.

`make test` runs this file on PostgreSQL too whenever PostgreSQL is reachable."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken

from devices.models import DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from protocol.auth import _access_token_orm, _access_token_postgresql, token_checksum
from protocol.registry import registry
from triggers.models import TriggerIdentity
from triggers.services import PollRead, _poll_read_orm, _poll_read_postgresql, trigger_identity_record


def _token(user: Any, raw: str, *, scope: str = "ifttt", expires_in: timedelta = timedelta(hours=1)) -> str:
    AccessToken.objects.create(user=user, token=raw, scope=scope, expires=timezone.now() + expires_in)
    return token_checksum(raw)


def _shape(read: PollRead | None) -> Any:
    if read is None:
        return None
    identity = read.identity
    described = None
    if identity is not None:
        described = (identity.pk, identity.identity, identity.trigger_slug, identity.fields, identity.feed_complete)
    return (read.token, described, [tuple(row) for row in read.rows])


@pytest.fixture
def world(make_user: Any) -> dict[str, Any]:
    alice, bob, gone = make_user("alice"), make_user("bob"), make_user("gone", is_active=False)
    lamp = device_create(owner=alice, name="Hall lamp", kind=DeviceKind.LIGHT, room="Hall")
    other = device_create(owner=bob, name="Bob's lamp", kind=DeviceKind.LIGHT, room="Den")
    spec = registry.triggers["device_switched_on"]
    for owner, device, identity in ((alice, lamp, "alice-lamp"), (bob, other, "bob-lamp")):
        trigger_identity_record(identity=identity, user=owner, spec=spec, fields={"device": device.public_id})
    start = timezone.now() - timedelta(days=3)
    history = [
        NewEvent(type=t, occurred_at=start + timedelta(minutes=i))
        for i, t in enumerate([EventType.SWITCHED_ON, EventType.SWITCHED_OFF] * 30)
    ]
    device_events_record(device=lamp, events=history, source=EventSource.DEVICE)
    trigger_identity_record(identity="deleted", user=alice, spec=spec, fields={"device": lamp.public_id})
    TriggerIdentity.objects.filter(identity="deleted").update(deleted_at=timezone.now())
    return {
        "alice": _token(alice, "alice-token", scope="read ifttt"),
        "expired": _token(alice, "expired-token", expires_in=-timedelta(seconds=1)),
        "wrong_scope": _token(alice, "read-token", scope="read"),
        "inactive": _token(gone, "gone-token"),
        "unknown": token_checksum("never-issued"),
    }


TOKENS = ["alice", "expired", "wrong_scope", "inactive", "unknown"]


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("identity", ["alice-lamp", "bob-lamp", "deleted", "never-polled"])
@pytest.mark.parametrize("limit", [0, 5, 50])
def test_the_poll_statement_and_the_orm_agree(
    world: dict[str, Any], token: str, identity: str, limit: int, require_postgres: None
) -> None:
    now = timezone.now()
    arguments = {"checksum": world[token], "identity": identity, "limit": limit, "now": now}
    statement, orm = _poll_read_postgresql(**arguments), _poll_read_orm(**arguments)
    assert _shape(statement) == _shape(orm)
    if token == "alice" and identity == "alice-lamp":
        assert statement is not None and len(statement.rows) == min(limit, 30)
        assert TriggerIdentity.objects.get(identity=identity).last_polled_at == now
    elif token != "alice":
        assert statement is None


@pytest.mark.parametrize("token", TOKENS)
def test_the_token_statement_and_the_orm_agree(world: dict[str, Any], token: str, require_postgres: None) -> None:
    now = timezone.now()
    statement, orm = _access_token_postgresql(world[token], now), _access_token_orm(world[token], now)
    if token == "alice":
        assert statement is not None and orm is not None
        assert statement[1] == orm[1]
        user_fields = [f.attname for f in type(orm[0])._meta.concrete_fields]
        assert [getattr(statement[0], f) for f in user_fields] == [getattr(orm[0], f) for f in user_fields]
    else:
        assert statement is None and orm is None


def test_the_orm_form_refuses_what_the_statement_refuses(world: dict[str, Any]) -> None:
    """On any database: only a live `ifttt` token of an active user reads a feed, and only its own."""
    now = timezone.now()
    read = _poll_read_orm(checksum=world["alice"], identity="alice-lamp", limit=50, now=now)
    assert read is not None and read.identity is not None and len(read.rows) == 30
    newest = [row[3] for row in read.rows]
    assert newest == sorted(newest, reverse=True)
    assert _poll_read_orm(checksum=world["alice"], identity="bob-lamp", limit=50, now=now) == PollRead(
        read.token, None, []
    )
    for refused in ("expired", "wrong_scope", "inactive", "unknown"):
        assert _poll_read_orm(checksum=world[refused], identity="alice-lamp", limit=50, now=now) is None


@pytest.mark.parametrize("slug", ["motion_detected", "temperature_rises_above", "device_switched_on"])
def test_a_known_identity_gets_the_full_paths_answer_byte_for_byte(
    ifttt: Any, setup_data: dict[str, Any], slug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from protocol.middleware import api_log_flush
    from protocol.models import ApiCall
    from triggers import apis

    body = {"triggerFields": setup_data["samples"]["triggers"][slug], "trigger_identity": f"id-{slug}", "limit": 2}
    first = ifttt.post(f"/ifttt/v1/triggers/{slug}", body)  # recorded by the full path
    fast = ifttt.post(f"/ifttt/v1/triggers/{slug}", body)
    monkeypatch.setattr(apis, "_poll_known_identity", lambda request, slug: None)
    full = ifttt.post(f"/ifttt/v1/triggers/{slug}", body)
    assert fast.status_code == full.status_code == first.status_code == 200
    assert fast.content == full.content == first.content and len(fast.json()["data"]) == 2
    assert dict(fast.headers) == dict(full.headers)
    api_log_flush()
    rows = list(
        ApiCall.objects.order_by("id").values(
            "endpoint", "slug", "status_code", "user_id", "trigger_identity", "items_returned", "newest_event_id",
            "request_id", "token_fingerprint", "error_message",
        )
    )[-3:]  # fmt: skip
    assert rows[0] == rows[1] == rows[2] and rows[0]["user_id"] is not None and rows[0]["request_id"]


@pytest.mark.parametrize(
    "change",
    ["no_token", "revoked", "bad_json", "negative_limit", "other_fields", "not_json_type", "unknown_slug", "get"],
)
def test_anything_but_a_known_identity_takes_the_full_path(ifttt: Any, setup_data: dict[str, Any], change: str) -> None:
    """The fast path answers only what it is sure of; the rest keeps its usual answer (and order: 401 first)."""
    slug = "motion_detected"
    fields = setup_data["samples"]["triggers"][slug]
    body: Any = {"triggerFields": fields, "trigger_identity": "porch"}
    assert ifttt.post(f"/ifttt/v1/triggers/{slug}", body).status_code == 200
    path, extra, expected = f"/ifttt/v1/triggers/{slug}", {}, 400
    if change == "no_token":
        ifttt.token, expected = None, 401
    elif change == "revoked":
        AccessToken.objects.filter(token_checksum=token_checksum(ifttt.token)).delete()
        expected = 401
    elif change == "bad_json":
        body = '{"trigger_identity": "porch", '
    elif change == "negative_limit":
        body = {**body, "limit": -1}
    elif change == "other_fields":
        body = {**body, "triggerFields": {"device": "nope"}}
    elif change == "not_json_type":
        extra = {"CONTENT_TYPE": "text/plain"}
        expected = 415
    elif change == "unknown_slug":
        path, expected = "/ifttt/v1/triggers/no_such_trigger", 404
    if change == "get":
        response = ifttt.get(path)
        expected = 405
    elif change == "not_json_type":
        response = ifttt.client.post(path, data=json.dumps(body), content_type="text/plain", **ifttt.headers())
    else:
        response = ifttt.post(path, body, **extra)
    assert response.status_code == expected, response.content
    assert response.json()["errors"][0]["message"]


def test_a_body_over_the_limit_gets_the_parsers_answer(ifttt: Any, setup_data: dict[str, Any], settings: Any) -> None:
    fields = setup_data["samples"]["triggers"]["motion_detected"]
    body = {"triggerFields": fields, "trigger_identity": "porch"}
    assert ifttt.post("/ifttt/v1/triggers/motion_detected", body).status_code == 200
    settings.API_MAX_BODY_BYTES = 20
    response = ifttt.post("/ifttt/v1/triggers/motion_detected", body)
    assert response.status_code == 413 and "larger than" in response.json()["errors"][0]["message"]
