"""The API log: what each call IFTTT makes leaves behind, and what it never keeps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken

from conftest import IftttClient
from devices.models import EventSource
from devices.services import device_switch
from protocol.models import ApiCall


def _poll(ifttt: IftttClient, life: Any, **headers: str) -> Any:
    body = {"trigger_identity": "ti-lamp-on", "triggerFields": {"device": life.lamp.public_id}, "limit": 5}
    return ifttt.post("/ifttt/v1/triggers/device_switched_on", body, **headers)


def test_a_poll_is_logged_with_the_newest_event_it_returned(client: Client, life: Any) -> None:
    device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)
    device_switch(device=life.lamp, on=False, source=EventSource.DEVICE)
    device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)
    ifttt = IftttClient(client, life.token)
    response = _poll(ifttt, life, HTTP_X_IFTTT_REALTIME="1", HTTP_IFTTT_TEST_MODE="1")
    assert response.status_code == 200
    returned = [item["meta"]["id"] for item in response.json()["data"]]
    assert len(returned) == 2
    call = ApiCall.objects.latest("id")
    assert call.endpoint == "trigger-poll"
    assert call.slug == "device_switched_on"
    assert call.status_code == 200
    assert call.user == life.user
    assert call.trigger_identity == "ti-lamp-on"
    assert call.items_returned == 2
    assert call.newest_event_id == returned[0]
    assert call.request_id == "0123456789abcdef0123456789abcdef"
    assert call.realtime and call.test_mode
    assert call.duration_ms > 0
    assert call.error_message == ""


def test_tokens_and_bodies_are_never_stored(client: Client, life: Any) -> None:
    _poll(IftttClient(client, life.token), life)
    client.get("/ifttt/v1/status", HTTP_IFTTT_SERVICE_KEY="test-service-key")
    for call in ApiCall.objects.all():
        stored = " ".join(str(getattr(call, f.attname)) for f in ApiCall._meta.concrete_fields)
        assert life.token not in stored
        assert "test-service-key" not in stored
        assert "triggerFields" not in stored


def test_a_refused_token_is_logged_against_its_user(client: Client, life: Any) -> None:
    ifttt = IftttClient(client, life.token)
    assert _poll(ifttt, life).status_code == 200
    AccessToken.objects.filter(user=life.user).delete()  # revoked
    assert _poll(ifttt, life).status_code == 401
    refused = ApiCall.objects.latest("id")
    assert refused.status_code == 401
    assert refused.user == life.user
    assert "revoked" in refused.error_message


def test_errors_keep_the_message_ifttt_was_given(client: Client, life: Any) -> None:
    ifttt = IftttClient(client, life.token)
    assert ifttt.post("/ifttt/v1/triggers/device_switched_on", "{not json").status_code == 400
    assert ifttt.post("/ifttt/v1/triggers/no_such_trigger", {}).status_code == 404
    bad_json, unknown = ApiCall.objects.order_by("id")[1:3]
    assert bad_json.status_code == 400 and bad_json.error_message
    assert unknown.slug == "no_such_trigger" and "no trigger named" in unknown.error_message
    assert ifttt.get("/ifttt/v1/nowhere").status_code == 404
    assert ApiCall.objects.latest("id").endpoint == "unknown"


def test_only_ifttt_calls_are_logged_and_the_log_can_be_turned_off(client: Client, life: Any, settings: Any) -> None:
    before = ApiCall.objects.count()
    client.get("/accounts/login/")
    assert ApiCall.objects.count() == before
    settings.IFTTT_API_LOG_ENABLED = False
    assert _poll(IftttClient(client, life.token), life).status_code == 200
    assert ApiCall.objects.count() == before


def test_rows_are_written_in_batches_with_their_own_time(
    client: Client, life: Any, settings: Any, monkeypatch: Any
) -> None:
    from protocol import middleware

    settings.API_LOG_FLUSH_SECONDS = 3600.0  # no flush by age: only by size, or on demand
    monkeypatch.setattr(middleware, "API_LOG_BATCH", 3)
    ifttt = IftttClient(client, life.token)
    before = ApiCall.objects.count()
    started = timezone.now()
    for _ in range(2):
        assert _poll(ifttt, life).status_code == 200
    assert ApiCall.objects.count() == before  # buffered, not yet written
    assert _poll(ifttt, life).status_code == 200  # the third fills the batch: one INSERT for all three
    assert ApiCall.objects.count() == before + 3
    assert _poll(ifttt, life).status_code == 200
    written_at = timezone.now() + timedelta(seconds=5)
    assert middleware.api_log_flush() == 1  # what a quiet process leaves waiting is written too
    calls = list(ApiCall.objects.order_by("id")[before:])
    assert len(calls) == 4
    assert all(started <= call.created_at < written_at for call in calls)
    assert [call.created_at for call in calls] == sorted(call.created_at for call in calls)
    assert all(call.trigger_identity == "ti-lamp-on" and call.items_returned == 0 for call in calls)


def test_one_row_that_cannot_be_written_costs_only_itself(life: Any, caplog: Any) -> None:
    from protocol import middleware

    before = ApiCall.objects.count()
    rows = [
        ApiCall(method="GET", endpoint="status", status_code=200, duration_ms=1, created_at=timezone.now())
        for _ in range(60)
    ]
    rows[30].status_code = -1  # the database refuses it (a positive field)
    buffer = middleware._Buffer()
    buffer.calls = rows
    assert buffer.flush() == 60
    assert ApiCall.objects.count() == before + 59
    assert "1 of 60 API-log rows could not be written" in caplog.text


def test_text_a_database_cannot_store_is_logged_cleaned(client: Client, life: Any) -> None:
    ifttt = IftttClient(client, life.token)
    body = {"trigger_identity": "ti-\x00-\ud800", "triggerFields": {"device": life.lamp.public_id}}
    # Refused (no database could store that identity), and the refusal is logged for support.
    assert ifttt.post("/ifttt/v1/triggers/device_switched_on", body).status_code == 400
    call = ApiCall.objects.latest("id")
    assert (call.status_code, call.endpoint) == (400, "trigger-poll")
    assert "NUL character" in call.error_message and "\x00" not in call.error_message
    # A NUL in the URL is refused before any view, and logged with the URL cleaned.
    ifttt.delete("/ifttt/v1/triggers/device_switched_on/trigger_identity/ti-%00-x")
    call = ApiCall.objects.latest("id")
    assert call.status_code == 400 and call.path.startswith("/ifttt/v1/triggers/") and "\x00" not in call.path
