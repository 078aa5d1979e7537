"""A poll costs O(limit): it reads `limit` rows of its feed, however long the history behind it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from triggers.models import TriggerIdentity


def _feed_rows_read(plan: dict[str, Any]) -> int:
    """The rows the plan's scans of the feed table produced (per loop, times loops)."""
    rows = 0
    if plan.get("Relation Name") == "triggers_triggerfeeditem":
        rows += int(plan.get("Actual Rows", 0)) * int(plan.get("Actual Loops", 1))
    for child in plan.get("Plans", []):
        rows += _feed_rows_read(child)
    return rows


def test_a_poll_reads_limit_feed_rows_of_a_long_history(ifttt: Any, make_user: Any, require_postgres: None) -> None:
    user = ifttt_user(ifttt)
    lamp = device_create(owner=user, name="Busy lamp", kind=DeviceKind.LIGHT, room="Hall")
    body = {"triggerFields": {"device": lamp.public_id}, "trigger_identity": "busy-lamp", "limit": 50}
    assert ifttt.post("/ifttt/v1/triggers/device_switched_on", body).json()["data"] == []
    start = timezone.now() - timedelta(days=30)
    history = [
        NewEvent(type=t, occurred_at=start + timedelta(minutes=i))
        for i, t in enumerate([EventType.SWITCHED_ON, EventType.SWITCHED_OFF] * 1500)
    ]
    device_events_record(device=lamp, events=history, source=EventSource.DEVICE)
    assert TriggerIdentity.objects.get(identity="busy-lamp").feed.count() == 1500
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE triggers_triggerfeeditem")

    with CaptureQueriesContext(connection) as queries:
        items = ifttt.post("/ifttt/v1/triggers/device_switched_on", body).json()["data"]
    assert len(items) == 50
    # The poll's statement is prepared once per connection (EXECUTE trigger_poll…), a plain read elsewhere.
    feed_queries = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("EXECUTE trigger_poll")
        or ("triggers_triggerfeeditem" in q["sql"] and not q["sql"].startswith("PREPARE"))
    ]
    assert len(feed_queries) == 1
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + feed_queries[0])
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    assert _feed_rows_read(plan[0]["Plan"]) <= 50


@pytest.mark.django_db(transaction=True)
def test_polling_again_marks_the_identity_polled_in_one_statement(ifttt: Any, setup_data: dict[str, Any]) -> None:
    body = {"triggerFields": setup_data["samples"]["triggers"]["motion_detected"], "trigger_identity": "porch"}
    ifttt.post("/ifttt/v1/triggers/motion_detected", body)
    earlier = timezone.now() - timedelta(hours=2)
    TriggerIdentity.objects.filter(identity="porch").update(last_polled_at=earlier)
    with CaptureQueriesContext(connection) as queries:
        assert len(ifttt.post("/ifttt/v1/triggers/motion_detected", body).json()["data"]) == 3
    identity = TriggerIdentity.objects.get(identity="porch")
    assert identity.last_polled_at is not None and identity.last_polled_at > earlier
    statements = [
        q["sql"] for q in queries.captured_queries if "apicall" not in q["sql"] and not q["sql"].startswith("PREPARE")
    ]
    # A known identity's fields are not validated again (no lookup of the device)...
    assert not any(sql.startswith('SELECT "devices_device".') for sql in statements), statements
    # ...and on PostgreSQL the poll is one statement: the token, the identity marked polled, the feed.
    if connection.vendor == "postgresql":
        assert len(statements) == 1, statements
        assert statements[0].startswith("EXECUTE trigger_poll"), statements


@pytest.mark.parametrize("change", ["deleted", "other_fields"])
def test_a_changed_identity_takes_the_full_path(ifttt: Any, setup_data: dict[str, Any], change: str) -> None:
    fields = setup_data["samples"]["triggers"]["temperature_rises_above"]
    body = {"triggerFields": fields, "trigger_identity": "hot"}
    ifttt.post("/ifttt/v1/triggers/temperature_rises_above", body)
    if change == "deleted":
        ifttt.delete("/ifttt/v1/triggers/temperature_rises_above/trigger_identity/hot")
    else:
        body = {**body, "triggerFields": {**fields, "threshold": "500"}}
    response = ifttt.post("/ifttt/v1/triggers/temperature_rises_above", body)
    if change == "deleted":
        assert len(response.json()["data"]) == 3  # revived, with its timeline
        assert TriggerIdentity.objects.get(identity="hot").deleted_at is None
    else:
        assert response.status_code == 400  # the new fields are validated: 500 °C is out of range
        assert TriggerIdentity.objects.get(identity="hot").fields == fields


def ifttt_user(ifttt: Any) -> Any:
    from oauth2_provider.models import AccessToken

    from protocol.tokens import token_digest

    return AccessToken.objects.get(token_checksum=token_digest(ifttt.token)).user
