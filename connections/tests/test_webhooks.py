"""Connect webhooks as IFTTT sends them (protocol section 11.2)."""

from __future__ import annotations

import json
import uuid

import pytest

from connections.models import (
    Connection,
    DeliveryStatus,
    FiredTrigger,
    ScriptRun,
    ScriptState,
    UserConnection,
    WebhookDelivery,
)

pytestmark = pytest.mark.django_db

SENT_AT = 1560285630711


@pytest.fixture
def user(make_user):
    return make_user("alice")


def body(user, event="enabled", **data):
    payload = {
        "sent_at": SENT_AT,
        "type": "connection",
        "event": event,
        "data": {"connection_id": "conn-1", "user_id": user.public_id, "user_timezone": "Pacific Time (US & Canada)"},
        "event_data": {f"{event}_at": str(SENT_AT)},
    }
    payload["data"].update(data)
    return payload


def fired_body(user, ingredients=None, sent_at=SENT_AT, **data):
    payload = {
        "sent_at": sent_at,
        "type": "trigger_subscription",
        "event": "fired",
        "data": {
            "connection_id": "conn-1",
            "user_id": user.public_id,
            "user_timezone": "Eastern Time (US & Canada)",
            "trigger_id": "youtube.new_liked_video",
            "feature_id": "f-1",
            "user_feature_id": "4da42aa6-3858-4722-9ded-6a7ecdefd91f",
            "user_feature_trigger_id": "uft-1",
        },
        "event_data": {"ingredients": ingredients if ingredients is not None else {"title": "Street Art"}},
    }
    payload["data"].update(data)
    return payload


@pytest.fixture
def post(client, service_headers, django_capture_on_commit_callbacks):
    def send(path, payload, request_id=None, headers=None):
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        extra = dict(service_headers if headers is None else headers)
        extra["HTTP_X_REQUEST_ID"] = request_id or uuid.uuid4().hex
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/ifttt/v1/webhooks/{path}", data=data, content_type="application/json", **extra)

    return send


def test_enabled_records_the_users_connection_and_timezone(post, user):
    response = post("connection/enabled", body(user))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    state = UserConnection.objects.get(user=user, connection__connection_id="conn-1")
    assert state.status == "enabled"
    assert state.timezone == "America/Los_Angeles"
    assert state.timezone_name == "Pacific Time (US & Canada)"
    assert state.enabled_at is not None and int(state.enabled_at.timestamp() * 1000) == SENT_AT
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED


def test_updated_then_disabled(post, user):
    post("connection/enabled", body(user))
    post("connection/updated", {**body(user, "updated", user_timezone="London"), "sent_at": SENT_AT + 1000})
    state = UserConnection.objects.get(user=user)
    assert (state.status, state.timezone) == ("enabled", "Europe/London")
    post(
        "connection/disabled",
        {**body(user, "disabled"), "sent_at": SENT_AT + 2000, "event_data": {"disabled_at": str(SENT_AT + 2000)}},
    )
    state.refresh_from_db()
    assert state.status == "disabled" and state.disabled_at is not None


def test_a_late_older_event_does_not_undo_a_newer_one(post, user):
    post("connection/disabled", {**body(user, "disabled"), "event_data": {"disabled_at": str(SENT_AT + 5000)}})
    post("connection/enabled", body(user))  # enabled_at is older than the disable
    assert UserConnection.objects.get(user=user).status == "disabled"


def test_fired_records_the_event_and_the_user_feature(post, user):
    response = post("trigger_subscription/fired", fired_body(user))
    assert response.status_code == 200
    fired = FiredTrigger.objects.get()
    assert fired.trigger_id == "youtube.new_liked_video"
    assert fired.ingredients == {"title": "Street Art"}
    assert fired.user_feature_trigger_id == "uft-1"
    assert fired.script_state == ScriptState.NONE  # the connection has no script
    state = fired.user_connection
    assert state.user_feature_ids == ["4da42aa6-3858-4722-9ded-6a7ecdefd91f"]
    assert state.timezone == "America/New_York"


def test_same_request_id_is_a_no_op(post, user):
    first = post("trigger_subscription/fired", fired_body(user), request_id="7f7cd9e0d8154531bbf36da8fe24b449")
    again = post(
        "trigger_subscription/fired",
        fired_body(user, sent_at=SENT_AT + 1),
        request_id="7f7cd9e0d8154531bbf36da8fe24b449",
    )
    assert again.status_code == 200
    assert again.json()["data"] == {**first.json()["data"], "duplicate": True}
    assert FiredTrigger.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_same_payload_with_a_new_request_id_is_a_no_op(post, user):
    post("trigger_subscription/fired", fired_body(user))
    again = post("trigger_subscription/fired", fired_body(user))
    assert again.json()["data"]["duplicate"] is True
    assert FiredTrigger.objects.count() == 1


def test_two_real_events_with_equal_ingredients_are_both_kept(post, user):
    post("trigger_subscription/fired", fired_body(user))
    post("trigger_subscription/fired", fired_body(user, sent_at=SENT_AT + 1))
    assert FiredTrigger.objects.count() == 2


def test_two_different_webhooks_of_an_unknown_type_are_both_kept(post, user):
    # A type we do not know may carry its news outside data and event_data: only the whole body tells
    # a second webhook from a repeat of the first.
    first = {"sent_at": SENT_AT, "type": "connection", "event": "renamed", "data": {}, "name": "Lights on"}
    second = {**first, "name": "Lights off"}
    answers = [post("connection/renamed", payload).json()["data"] for payload in (first, second, second)]
    assert [answer["duplicate"] for answer in answers] == [False, False, True]
    assert sorted(d.payload["name"] for d in WebhookDelivery.objects.all()) == ["Lights off", "Lights on"]


def test_unknown_event_type_is_accepted_and_kept(post, user, caplog):
    caplog.set_level("INFO", logger="connections.apis")
    response = post("connection/paused", body(user, "paused"))
    assert response.status_code == 200
    assert response.json()["data"]["handled"] is False
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED
    assert not UserConnection.objects.exists()
    assert "connection/paused has no handler" in caplog.text


def test_wrong_service_key_is_401_and_records_nothing(post, user):
    response = post("connection/enabled", body(user), headers={"HTTP_IFTTT_SERVICE_KEY": "wrong"})
    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": "The IFTTT-Service-Key is not this service's key."}]}
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "The request body is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"sent_at": SENT_AT}, "missing “data”"),
        ({"data": "x"}, "“data” must be an object"),
        ({"data": {"connection_id": "conn-1"}}, "missing “data.user_id”"),
        ({"data": {"user_id": "u", "connection_id": ["a"]}}, "“data.connection_id” must be a string"),
        ({"sent_at": "yesterday", "data": {}}, "“sent_at” must be a time in milliseconds"),
    ],
)
def test_malformed_bodies_are_400_with_a_clear_message(post, user, payload, message):
    response = post("connection/enabled", payload)
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]
    assert not WebhookDelivery.objects.exists()


def test_fired_without_trigger_id_is_400(post, user):
    payload = fired_body(user)
    del payload["data"]["trigger_id"]
    response = post("trigger_subscription/fired", payload)
    assert response.status_code == 400
    assert "data.trigger_id" in response.json()["errors"][0]["message"]


def test_ingredients_must_be_an_object(post, user):
    payload = fired_body(user)
    payload["event_data"]["ingredients"] = "Street Art"
    response = post("trigger_subscription/fired", payload)
    assert response.status_code == 400
    assert "event_data.ingredients" in response.json()["errors"][0]["message"]


def test_unknown_user_is_404_and_records_nothing(post, user):
    response = post("connection/enabled", body(user, user_id="nobody-here"))
    assert response.status_code == 404
    assert "nobody-here" in response.json()["errors"][0]["message"]
    assert not WebhookDelivery.objects.exists()


def test_extra_keys_are_ignored(post, user):
    payload = body(user)
    payload["something_new"] = {"x": 1}
    payload["data"]["another"] = True
    assert post("connection/enabled", payload).status_code == 200
    assert UserConnection.objects.filter(user=user).exists()


def test_fired_runs_the_connection_script_through_the_connect_api(post, user, connect_api):
    connect_api.enabled_users.add(user.public_id)
    Connection.objects.create(
        connection_id="conn-1",
        script=(
            'console.log("liked", Trigger.ingredients.title, "at hour", Meta.currentUserTime.hour());\n'
            'runAction("sms.send_me_text", {fields: {message: Trigger.ingredients.title},'
            " user_feature_id: Connection.userFeatureId})\n"
            '  .then(r => console.log("status", r.statusCode));'
        ),
    )
    post("trigger_subscription/fired", fired_body(user))
    fired = FiredTrigger.objects.get()
    assert fired.script_state == ScriptState.DONE
    run = ScriptRun.objects.get()
    assert run.outcome == "succeeded", run.error
    assert run.fired_trigger == fired and run.user == user and not run.is_test
    assert [line["message"].split(" at hour")[0] for line in run.logs] == ["liked Street Art", "status 204"]
    assert run.calls[0]["status_code"] == 204 and run.calls[0]["sent"] is True
    sent = connect_api.calls("POST", "/run")
    assert len(sent) == 1
    assert sent[0].path == "/v2/connections/conn-1/actions/sms.send_me_text/run"
    assert sent[0].body == {
        "fields": {"message": "Street Art"},
        "user_feature_id": "4da42aa6-3858-4722-9ded-6a7ecdefd91f",
        "user_id": user.public_id,
    }


def test_a_repeated_fired_delivery_runs_the_script_once(post, user, connect_api):
    connect_api.enabled_users.add(user.public_id)
    Connection.objects.create(connection_id="conn-1", script='runAction("sms.send_me_text")')
    post("trigger_subscription/fired", fired_body(user), request_id="a" * 32)
    post("trigger_subscription/fired", fired_body(user), request_id="a" * 32)
    assert ScriptRun.objects.count() == 1
    assert len(connect_api.calls("POST", "/run")) == 1


def test_the_script_cannot_act_for_another_user(post, user, connect_api):
    connect_api.enabled_users.add(user.public_id)
    Connection.objects.create(connection_id="conn-1", script='runAction("sms.send_me_text", {user_id: "someone-else"})')
    post("trigger_subscription/fired", fired_body(user))
    assert connect_api.calls("POST", "/run")[0].body["user_id"] == user.public_id


def test_oversize_body_is_413_and_records_nothing(post, user, settings):
    settings.API_MAX_BODY_BYTES = 2_000
    payload = fired_body(user, ingredients={"title": "x" * 5_000})
    response = post("trigger_subscription/fired", payload)
    assert response.status_code == 413
    assert "larger than the 2,000 bytes" in response.json()["errors"][0]["message"]
    assert not WebhookDelivery.objects.exists()


def test_a_delivery_that_cannot_be_applied_is_marked_failed_and_changes_nothing(user, monkeypatch):
    from connections import services

    payload = body(user)
    delivery, _created = services.webhook_delivery_receive(
        kind="connection", event="enabled", payload=payload, request_id="r1", webhook=None
    )
    # Stored as received (as the view would), then applied by the task while something breaks mid-way.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.RECEIVED, user=user)

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "fired_trigger_record", broken)
    monkeypatch.setattr(services, "user_connection_apply", broken)
    services.webhook_delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "disk full" in delivery.message
    assert not Connection.objects.exists() and not UserConnection.objects.exists()
    # Claimed once: running it again is a no-op.
    assert services.webhook_delivery_process(delivery_id=delivery.pk) is None


def test_the_sweep_finishes_work_a_broker_or_worker_outage_left_behind(
    client, service_headers, user, connect_api, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from connections.services import connections_work_sweep

    connect_api.enabled_users.add(user.public_id)
    Connection.objects.create(connection_id="conn-1", script='runAction("sms.send_me_text")')
    # The broker was down: the deliveries are stored, but the tasks queued after commit never arrive.
    for path, payload in (("connection/enabled", body(user)), ("trigger_subscription/fired", fired_body(user))):
        with django_capture_on_commit_callbacks(execute=False):
            response = client.post(
                f"/ifttt/v1/webhooks/{path}",
                data=json.dumps(payload),
                content_type="application/json",
                HTTP_X_REQUEST_ID=uuid.uuid4().hex,
                **service_headers,
            )
        assert response.status_code < 300
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count() == 2

    # Too recent to resend: a task may still be on its way.
    assert connections_work_sweep()["deliveries_enqueued"] == 0
    WebhookDelivery.objects.update(received_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert connections_work_sweep()["deliveries_enqueued"] == 2
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED}
    fired = FiredTrigger.objects.get()
    assert fired.script_state == ScriptState.DONE
    assert len(connect_api.calls("POST", "/run")) == 1

    # A worker died mid-run, long after the event arrived: its lease decides, not the event's age.
    now = timezone.now()
    FiredTrigger.objects.update(
        script_state=ScriptState.RUNNING, claimed_at=now, lease_expires_at=now + timedelta(minutes=1)
    )
    WebhookDelivery.objects.update(received_at=now - timedelta(hours=1))
    assert connections_work_sweep()["stopped_script_runs"] == 0  # still leased: it may be running
    FiredTrigger.objects.update(lease_expires_at=now - timedelta(seconds=1))
    assert connections_work_sweep()["stopped_script_runs"] == 1
    fired.refresh_from_db()
    assert fired.script_state == ScriptState.FAILED
    assert "not run again" in fired.script_error
    stopped = ScriptRun.objects.filter(fired_trigger=fired).latest("id")
    assert stopped.outcome == "crashed" and "lease" in stopped.error
    # Ended as failed, never re-run: its calls may already have gone out.
    assert connections_work_sweep()["stopped_script_runs"] == 0
    assert len(connect_api.calls("POST", "/run")) == 1


def test_a_delivery_is_processed_again_only_once_its_workers_lease_lapsed(
    user, client, service_headers, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from connections.services import connections_work_sweep

    with django_capture_on_commit_callbacks(execute=False):  # the broker was down: no task ran
        response = client.post(
            "/ifttt/v1/webhooks/connection/enabled",
            data=json.dumps(body(user)),
            content_type="application/json",
            HTTP_X_REQUEST_ID=uuid.uuid4().hex,
            **service_headers,
        )
    assert response.status_code < 300
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()
    # A worker claimed it an hour after it arrived and is still within its lease.
    WebhookDelivery.objects.update(
        status=DeliveryStatus.PROCESSING,
        received_at=now - timedelta(hours=2),
        claimed_at=now,
        lease_expires_at=now + timedelta(minutes=1),
    )
    assert connections_work_sweep()["reclaimed_deliveries"] == 0
    WebhookDelivery.objects.update(lease_expires_at=now - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert connections_work_sweep()["reclaimed_deliveries"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED  # processed again by the sweep's task
    assert delivery.lease_expires_at is None
