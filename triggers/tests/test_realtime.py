"""Realtime notifications, run in-process (eager tasks) against a local stand-in Realtime server.

The worker, broker and fault tests are in test_realtime_worker.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from conftest import SERVICE_KEY
from devices.models import Device, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_api_key_issue, device_create, device_events_record, device_switch
from triggers import tasks
from triggers.models import DeliveryStatus, RealtimeDelivery, TriggerFeedItem, TriggerIdentity
from triggers.realtime import realtime_pending_mark, trigger_identities_retire
from triggers.services import realtime_notification_resend, trigger_identity_delete

from .standin import Reply, StandIn, broker_connections_reset, standin


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """Run what the block registers on commit (the Realtime enqueue) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def realtime(settings: Any) -> Iterator[StandIn]:
    with standin() as server:
        settings.IFTTT_REALTIME_URL = server.url
        yield server


@pytest.fixture
def home(make_user: Any) -> dict[str, Any]:
    user = make_user("erin")
    lamp = device_create(owner=user, name="Lamp", kind=DeviceKind.LIGHT, room="Den")
    thermostat = device_create(owner=user, name="Thermostat", kind=DeviceKind.THERMOSTAT, room="Den")
    return {"user": user, "lamp": lamp, "thermostat": thermostat}


def identity(user: Any, slug: str, name: str, **fields: Any) -> TriggerIdentity:
    return TriggerIdentity.objects.create(identity=name, user=user, trigger_slug=slug, fields=fields)


def test_a_matching_event_notifies_its_identity_once(realtime: StandIn, home: dict[str, Any], committed: Any) -> None:
    on = identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    identity(home["user"], "device_switched_off", "ti-off", device=home["lamp"].public_id)

    with committed():
        device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)

    [request] = realtime.received
    assert request.body == {"data": [{"trigger_identity": "ti-on"}]}
    assert request.service_key == SERVICE_KEY
    assert re.fullmatch(r"[0-9a-f]{32}", request.request_id)
    delivery = RealtimeDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.request_id) == ("delivered", 1, request.request_id)
    assert delivery.latency_ms is not None and delivery.response_status == 200
    assert list(delivery.trigger_identities.all()) == [on]
    on.refresh_from_db()
    assert on.notify_pending_since is None and on.last_notified_at is not None


def test_many_events_for_one_identity_are_one_entry(realtime: StandIn, home: dict[str, Any], committed: Any) -> None:
    rises = identity(
        home["user"], "temperature_rises_above", "ti-warm", device=home["thermostat"].public_id, threshold="20"
    )
    readings = [NewEvent(type=EventType.TEMPERATURE, value=v) for v in (18, 21, 19, 22, 17, 23)]

    with committed():
        device_events_record(device=home["thermostat"], events=readings, source=EventSource.DEVICE)

    assert [r.identities for r in realtime.received] == [["ti-warm"]]
    assert TriggerFeedItem.objects.filter(identity=rises).count() == 3


def test_other_users_and_deleted_identities_are_not_notified(
    realtime: StandIn, home: dict[str, Any], make_user: Any, committed: Any
) -> None:
    other = make_user("frank")
    other_lamp = device_create(owner=other, name="Lamp", kind=DeviceKind.LIGHT)
    identity(other, "device_switched_on", "ti-frank", device=other_lamp.public_id)
    identity(home["user"], "device_switched_on", "ti-gone", device=home["lamp"].public_id)
    trigger_identity_delete(user=home["user"], identity="ti-gone")

    with committed():
        device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)

    assert realtime.received == []
    assert not TriggerIdentity.objects.filter(notify_pending_since__isnull=False).exists()


def test_more_than_1000_identities_go_in_requests_of_at_most_1000(
    realtime: StandIn, home: dict[str, Any], committed: Any
) -> None:
    TriggerIdentity.objects.bulk_create(
        TriggerIdentity(identity=f"ti-{n:04}", user=home["user"], trigger_slug="new_device_added") for n in range(1500)
    )

    with committed():
        device_create(owner=home["user"], name="Plug", kind=DeviceKind.PLUG)

    sizes = sorted(len(r.identities) for r in realtime.received)
    assert sizes == [500, 1000]
    assert len({i for r in realtime.received for i in r.identities}) == 1500
    assert sorted(RealtimeDelivery.objects.values_list("identity_count", flat=True)) == [500, 1000]


def test_a_server_error_holds_new_notifications_back_until_the_retry_gets_through(
    settings: Any, home: dict[str, Any], committed: Any
) -> None:
    identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    off = identity(home["user"], "device_switched_off", "ti-off", device=home["lamp"].public_id)
    with standin([Reply(503)]) as server:
        settings.IFTTT_REALTIME_URL = server.url

        with committed():
            device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)
        with committed():
            device_switch(device=home["lamp"], on=False, source=EventSource.ACCOUNT)

        first = RealtimeDelivery.objects.get()  # IFTTT is failing: nothing new is claimed
        assert first.identities == ["ti-on"] and first.status == DeliveryStatus.RETRYING
        assert first.next_attempt_at is not None and first.next_attempt_at > timezone.now()
        assert first.response_status == 503 and first.attempts == 1
        off.refresh_from_db()
        assert off.notify_pending_since is not None  # waiting on its identity, not failed

        RealtimeDelivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
        with committed():
            tasks.realtime_delivery_retry(first.pk)

        assert [(r.status, r.identities) for r in server.received] == [
            (503, ["ti-on"]),
            (200, ["ti-on"]),
            (200, ["ti-off"]),
        ]
    first.refresh_from_db()
    assert (first.status, first.attempts) == (DeliveryStatus.DELIVERED, 2)
    attempts = list(first.attempt_log.values_list("number", "outcome", "response_status"))
    assert attempts == [(1, "retry", 503), (2, "delivered", 200)]


def test_a_refusal_is_dropped_and_recorded(settings: Any, home: dict[str, Any], committed: Any) -> None:
    identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    with standin([Reply(400)]) as server:
        settings.IFTTT_REALTIME_URL = server.url
        with committed():
            device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)

    delivery = RealtimeDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DROPPED and delivery.response_status == 400
    assert delivery.completed_at is not None
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["refused"]


def test_a_long_outage_is_retried_until_it_ends(settings: Any, home: dict[str, Any], committed: Any) -> None:
    # No attempt limit: however many failures, the identity stays owed a notification until one gets through.
    identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    with standin([Reply(500)] * 30) as server:
        settings.IFTTT_REALTIME_URL = server.url
        with committed():
            device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)
        delivery = RealtimeDelivery.objects.get()
        for _ in range(30):
            RealtimeDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
            with committed():
                tasks.realtime_delivery_retry(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 31)
    assert len({r.request_id for r in server.received}) == 1
    assert delivery.attempt_log.count() == 31


def test_retry_after_is_honoured(settings: Any, home: dict[str, Any], committed: Any) -> None:
    identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    with standin([Reply(429, {"Retry-After": "45"})]) as server:  # within the cap (60 s)
        settings.IFTTT_REALTIME_URL = server.url
        with committed():
            device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)

    delivery = RealtimeDelivery.objects.get()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.response_status == 429
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()  # type: ignore[operator]
    assert 40 < wait <= 45


def test_a_retry_leaves_out_identities_deleted_meanwhile(settings: Any, home: dict[str, Any], committed: Any) -> None:
    identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    identity(home["user"], "new_device_added", "ti-new")
    with standin([Reply(500)]) as server:
        settings.IFTTT_REALTIME_URL = server.url
        with committed():
            device_create(owner=home["user"], name="Lamp 2", kind=DeviceKind.LIGHT)
        trigger_identity_delete(user=home["user"], identity="ti-new")
        delivery = RealtimeDelivery.objects.get()
        RealtimeDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())

        tasks.realtime_delivery_retry(delivery.pk)

        assert [r.identities for r in server.received] == [["ti-new"]]  # only the failed first attempt
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DROPPED and "deleted" in delivery.error


def test_a_delivery_is_attempted_by_one_worker_only(realtime: StandIn, home: dict[str, Any], committed: Any) -> None:
    identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    with standin([Reply(500)]) as failing:
        from django.conf import settings

        settings.IFTTT_REALTIME_URL = failing.url
        with committed():
            device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)
    settings.IFTTT_REALTIME_URL = realtime.url
    delivery = RealtimeDelivery.objects.get()
    RealtimeDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())

    for _ in range(3):  # the same task delivered three times
        tasks.realtime_delivery_retry(delivery.pk)

    assert len(realtime.received) == 1
    assert realtime.received[0].request_id == delivery.request_id
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)


def test_realtime_off_marks_nothing(settings: Any, home: dict[str, Any], committed: Any) -> None:
    settings.IFTTT_REALTIME_URL = ""
    on = identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)

    with committed():
        device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)

    on.refresh_from_db()
    assert on.notify_pending_since is None
    assert not RealtimeDelivery.objects.exists()


def test_a_rolled_back_event_leaves_no_mark(realtime: StandIn, home: dict[str, Any], committed: Any) -> None:
    on = identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)

    with committed(), pytest.raises(RuntimeError), transaction.atomic():
        device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)
        raise RuntimeError("the request failed after recording")

    on.refresh_from_db()
    assert on.notify_pending_since is None
    assert realtime.received == []


def test_support_can_resend_a_notification(realtime: StandIn, home: dict[str, Any], committed: Any) -> None:
    on = identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)

    with committed():
        realtime_notification_resend(identity=on)

    assert [r.identities for r in realtime.received] == [["ti-on"]]
    assert on.realtime_deliveries.get().status == DeliveryStatus.DELIVERED


def test_a_broker_outage_does_not_fail_the_request_and_the_sweep_sends_later(
    settings: Any, client: Client, home: dict[str, Any], realtime: StandIn, committed: Any
) -> None:
    on = identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    key = device_api_key_issue(device=home["lamp"])
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:8399/0"  # nothing listens there: the broker is down
    broker_connections_reset()
    try:
        with committed():
            response = client.post(
                "/api/v1/device/events",
                data=json.dumps({"type": "switched_on"}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Device {key}",
            )
    finally:
        broker_connections_reset()
    assert response.status_code == 202
    on.refresh_from_db()
    assert on.notify_pending_since is not None
    assert realtime.received == []

    settings.CELERY_TASK_ALWAYS_EAGER = True
    TriggerIdentity.objects.filter(pk=on.pk).update(notify_pending_since=timezone.now() - timedelta(seconds=5))
    tasks.realtime_sweep()

    assert [r.identities for r in realtime.received] == [["ti-on"]]


def test_identities_not_polled_for_30_days_are_retired(home: dict[str, Any], realtime: StandIn, committed: Any) -> None:
    now = timezone.now()
    lamp = home["lamp"].public_id
    stale = identity(home["user"], "device_switched_on", "ti-stale", device=lamp)
    fresh = identity(home["user"], "device_switched_off", "ti-fresh", device=lamp)
    never = identity(home["user"], "new_device_added", "ti-never")
    TriggerIdentity.objects.filter(pk=stale.pk).update(last_polled_at=now - timedelta(days=31))
    TriggerIdentity.objects.filter(pk=fresh.pk).update(last_polled_at=now - timedelta(days=29))
    TriggerIdentity.objects.filter(pk=never.pk).update(first_seen_at=now - timedelta(days=31))
    with committed():
        device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)
    assert TriggerFeedItem.objects.filter(identity=stale).exists()
    realtime.received.clear()

    assert trigger_identities_retire() == 2

    retired = set(TriggerIdentity.objects.filter(deleted_at__isnull=False).values_list("identity", flat=True))
    assert retired == {"ti-stale", "ti-never"}
    assert not TriggerFeedItem.objects.filter(identity=stale).exists()
    with committed():
        device_switch(device=home["lamp"], on=False, source=EventSource.ACCOUNT)
    with committed():
        device_switch(device=home["lamp"], on=True, source=EventSource.ACCOUNT)
    assert {i for r in realtime.received for i in r.identities} == {"ti-fresh"}


def test_marking_is_a_constant_number_of_queries(
    realtime: StandIn, home: dict[str, Any], django_assert_max_num_queries: Any, committed: Any
) -> None:
    ids = [identity(home["user"], "device_switched_on", f"ti-{n}", device=home["lamp"].public_id).pk for n in range(50)]
    with committed(), transaction.atomic():
        # Lock and mark (plus a savepoint and its release), however many identities.
        with django_assert_max_num_queries(4):
            realtime_pending_mark(identity_ids=ids)
        assert TriggerIdentity.objects.filter(notify_pending_since__isnull=False).count() == 50
    assert {i for r in realtime.received for i in r.identities} == {f"ti-{n}" for n in range(50)}


def test_device_api_batches_fan_out_in_constant_queries(
    client: Client, home: dict[str, Any], settings: Any, require_postgres: None, committed: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.IFTTT_REALTIME_URL = "http://127.0.0.1:8399/unused"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:8399/0"  # the on-commit enqueue fails fast; not counted
    lamp: Device = home["lamp"]
    for n in range(20):
        identity(
            home["user"], "device_switched_on" if n % 2 else "device_switched_off", f"ti-{n}", device=lamp.public_id
        )
    key = device_api_key_issue(device=lamp)

    def report(count: int, prefix: str) -> int:
        events = [
            {"type": "switched_on" if n % 2 else "switched_off", "event_id": f"{prefix}{n}"} for n in range(count)
        ]
        with CaptureQueriesContext(connection) as queries, committed():
            response = client.post(
                "/api/v1/device/events",
                data=json.dumps({"events": events}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Device {key}",
            )
        assert response.status_code == 202
        return len(queries)

    broker_connections_reset()
    try:
        report(1, "w")  # creates the dispatch slot row once; later reports find a dispatch already queued
        small, large = report(4, "a"), report(400, "b")
    finally:
        broker_connections_reset()
    assert small == large
    assert TriggerFeedItem.objects.filter(event__external_id__startswith="b").count() == 400 * 10
    assert TriggerIdentity.objects.filter(notify_pending_since__isnull=False).count() == 20


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_failed_delivery_is_counted_and_logged_with_the_request_that_caused_it(
    settings: Any, home: dict[str, Any], client: Client, caplog: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from core.observability import RequestIdFilter

    identity(home["user"], "device_switched_on", "ti-on", device=home["lamp"].public_id)
    key = device_api_key_issue(device=home["lamp"])
    caplog.handler.addFilter(RequestIdFilter())
    before = {
        "retry": _sample("realtime_attempts_total", outcome="retry"),
        "delivered": _sample("realtime_attempts_total", outcome="delivered"),
        "finished": _sample("realtime_deliveries_total", outcome="delivered"),
        "latency": _sample("realtime_notification_latency_seconds_count"),
    }
    with standin([Reply(500)]) as server:
        settings.IFTTT_REALTIME_URL = server.url
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/device/events",
                data=json.dumps({"events": [{"type": "switched_on"}]}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Device {key}",
                HTTP_X_REQUEST_ID="report-42",
            )
        assert response.status_code == 202
        delivery = RealtimeDelivery.objects.get()
        assert delivery.origin_request_id == "report-42"
        failed = [r for r in caplog.records if r.name == "triggers.realtime" and "failed" in r.getMessage()]
        assert failed and all(r.request_id == "report-42" for r in failed)

        RealtimeDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        tasks.realtime_delivery_retry(delivery.pk)

    assert _sample("realtime_attempts_total", outcome="retry") == before["retry"] + 1
    assert _sample("realtime_attempts_total", outcome="delivered") == before["delivered"] + 1
    assert _sample("realtime_deliveries_total", outcome="delivered") == before["finished"] + 1
    assert _sample("realtime_notification_latency_seconds_count") == before["latency"] + 1
