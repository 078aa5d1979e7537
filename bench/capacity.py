#!/usr/bin/env python
"""Bytes per row of every growing table, measured on PostgreSQL, and each table's size at the design scale.

Writes realistic rows through the project's own code (device events through the device domain, feeds
through the fan-out, API-log rows as the middleware builds them), then reads PostgreSQL's own size of
each table with its indexes and TOAST (`pg_total_relation_size`) after VACUUM ANALYZE. The design
scale (product.md: about 1,400 polls a second, ten million devices, a billion events) and the
retention settings then give each table's size; the table printed is the one in docs/capacity.md.

    .venv/bin/python bench/capacity.py                  # about a minute
    .venv/bin/python bench/capacity.py --rows 50000
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import django_start, say  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_capacity"

# The design scale (product.md) and what follows from it, stated so each figure can be checked.
POLLS_PER_SECOND = 1_400
FAILED_SHARE = 0.02  # of API calls: refused tokens, skips, validation errors
ACTIVE_IDENTITIES = POLLS_PER_SECOND * 3_600  # each polled about hourly
EVENTS_TOTAL = 1_000_000_000
EVENTS_PER_DAY = 30_000_000  # a billion events is about a month of ten million devices' reports
ACTIONS_PER_SECOND = 100
REALTIME_DELIVERIES_PER_SECOND = 50  # batched: one request notifies up to 1,000 identities
CONNECT_WEBHOOKS_PER_SECOND = 20
USERS = 1_000_000
ENDPOINTS_PER_USER_PER_DAY = 4  # (endpoint, slug) pairs a user's Applets call in a day


def _rows(kind: str, n: int) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from actions.models import ActionRun, ActionRunStatus
    from connections.models import Connection, DeliveryStatus, UserConnection, WebhookDelivery
    from devices.models import DeviceKind, EventSource, EventType
    from devices.services import NewEvent, device_create, device_events_record
    from protocol.models import ApiCall, ApiCallSummary
    from triggers.models import DeliveryStatus as RealtimeStatus
    from triggers.models import RealtimeDelivery, TriggerIdentity

    user, _ = get_user_model().objects.get_or_create(username="capacity", defaults={"email": "c@example.com"})
    now = timezone.now()
    if kind == "events":
        lamp = device_create(owner=user, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office")
        thermostat = device_create(owner=user, name="Hall thermostat", kind=DeviceKind.THERMOSTAT, room="Hallway")
        for identity, device, fields in (
            ("ti-lamp", lamp, {"device": lamp.public_id}),
            ("ti-thermo", thermostat, {"device": thermostat.public_id, "threshold": "21"}),
        ):
            slug = "device_switched_on" if device is lamp else "temperature_rises_above"
            TriggerIdentity.objects.create(identity=identity, user=user, trigger_slug=slug, fields=fields)
        for _ in range(0, n, 500):
            switches = [NewEvent(type=EventType.SWITCHED_ON if i % 2 else EventType.SWITCHED_OFF) for i in range(250)]
            readings = [NewEvent(type=EventType.TEMPERATURE, value=19 + (i % 5)) for i in range(250)]
            device_events_record(device=lamp, events=switches, source=EventSource.DEVICE)
            device_events_record(device=thermostat, events=readings, source=EventSource.DEVICE)
    elif kind == "api_log":
        ApiCall.objects.bulk_create(
            ApiCall(
                created_at=now - timedelta(seconds=i),
                method="POST",
                path="",
                endpoint="trigger-poll",
                slug="device_switched_on",
                status_code=200 if i % 50 else 401,
                duration_ms=3.25,
                request_id=secrets.token_hex(16),
                realtime=i % 3 == 0,
                user_id=user.pk,
                trigger_identity=secrets.token_hex(20),
                items_returned=50,
                newest_event_id=secrets.token_hex(12),
                error_message="" if i % 50 else "The access token is invalid, expired or revoked.",
                token_fingerprint=secrets.token_hex(8),
            )
            for i in range(n)
        )
        ApiCallSummary.objects.bulk_create(
            ApiCallSummary(
                day=(now - timedelta(days=i % 400)).date(),
                user_id=user.pk,
                endpoint="trigger-poll",
                slug=f"slug_{i % 7}",
                calls=24,
                failures=1,
                total_ms=80.0,
                max_ms=9.0,
            )
            for i in range(n)
        )
    elif kind == "work":
        ActionRun.objects.bulk_create(
            ActionRun(
                user=user,
                action_slug="set_light_color",
                status=ActionRunStatus.SUCCEEDED,
                request_id=secrets.token_hex(16),
                public_id=secrets.token_hex(12),
            )
            for _ in range(n)
        )
        deliveries = RealtimeDelivery.objects.bulk_create(
            RealtimeDelivery(
                status=RealtimeStatus.DELIVERED,
                identities=[secrets.token_hex(20)],
                identity_count=1,
                attempts=1,
                pending_since=now,
                completed_at=now,
                latency_ms=420.0,
                response_status=200,
            )
            for _ in range(n)
        )
        notified = TriggerIdentity.objects.create(
            identity="ti-realtime", user=user, trigger_slug="motion_detected", fields={"device": "x"}
        )
        links = RealtimeDelivery.trigger_identities.through
        links.objects.bulk_create(links(realtimedelivery_id=d.pk, triggeridentity_id=notified.pk) for d in deliveries)
        connection = Connection.objects.create(connection_id="C1", name="Capacity")
        UserConnection.objects.create(connection=connection, user=user, status="enabled")
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                request_id=secrets.token_hex(16),
                payload_key=secrets.token_hex(32),
                type="trigger_subscription",
                event="fired",
                connection=connection,
                user=user,
                status=DeliveryStatus.PROCESSED,
                payload={"user_id": user.public_id, "data": {"trigger_id": "t", "ingredients": {}}},
            )
            for _ in range(n)
        )


def measure(n: int) -> dict[str, tuple[int, int]]:
    """{table: (rows, bytes with indexes and TOAST)} after writing about `n` rows of each."""
    from django.db import connection

    for kind in ("events", "api_log", "work"):
        say(f"Writing {kind}…")
        _rows(kind, n)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT relname, n_live_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables WHERE n_live_tup > 0"
        )
        return {name: (rows, size) for name, rows, size in cursor.fetchall()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--rows", type=int, default=20_000, help="rows written per table (default: %(default)s)")
    args = parser.parse_args()
    django_start(args.database_url)
    from django.conf import settings

    sizes = measure(args.rows)
    detail_s = settings.API_LOG_DETAIL_HOURS * 3600
    day = 86_400
    design: list[tuple[str, str, str, float]] = [
        # (table, rows at the design scale: how, retention, rows)
        ("devices_deviceevent", "a billion events", "history, on purpose", EVENTS_TOTAL),
        (
            "triggers_triggerfeeditem",
            f"{ACTIVE_IDENTITIES:,} identities × {settings.TRIGGER_FEED_KEEP}",
            f"newest {settings.TRIGGER_FEED_KEEP} per identity",
            ACTIVE_IDENTITIES * settings.TRIGGER_FEED_KEEP,
        ),
        (
            "iftttsvc_apicall",
            f"{POLLS_PER_SECOND:,}/s × {settings.API_LOG_DETAIL_HOURS:g} h + {FAILED_SHARE:.0%} "
            f"failed × {settings.API_LOG_FAILURE_RETENTION_DAYS:g} d",
            f"{settings.API_LOG_DETAIL_HOURS:g} h; failures {settings.API_LOG_FAILURE_RETENTION_DAYS:g} d",
            POLLS_PER_SECOND * detail_s
            + POLLS_PER_SECOND * FAILED_SHARE * day * settings.API_LOG_FAILURE_RETENTION_DAYS,
        ),
        (
            "iftttsvc_apicallsummary",
            f"{USERS:,} users × {ENDPOINTS_PER_USER_PER_DAY} a day",
            f"{settings.API_LOG_SUMMARY_RETENTION_DAYS:g} d",
            USERS * ENDPOINTS_PER_USER_PER_DAY * settings.API_LOG_SUMMARY_RETENTION_DAYS,
        ),
        (
            "actions_actionrun",
            f"{ACTIONS_PER_SECOND}/s",
            f"{settings.ACTION_RUN_RETENTION_DAYS:g} d",
            ACTIONS_PER_SECOND * day * settings.ACTION_RUN_RETENTION_DAYS,
        ),
        (
            "triggers_realtimedelivery",
            f"{REALTIME_DELIVERIES_PER_SECOND}/s",
            f"{settings.REALTIME_DELIVERY_RETENTION_DAYS:g} d",
            REALTIME_DELIVERIES_PER_SECOND * day * settings.REALTIME_DELIVERY_RETENTION_DAYS,
        ),
        (
            "triggers_realtimedelivery_trigger_identities",
            "one link per identity notified",
            f"{settings.REALTIME_DELIVERY_RETENTION_DAYS:g} d (with its delivery)",
            REALTIME_DELIVERIES_PER_SECOND * 20 * day * settings.REALTIME_DELIVERY_RETENTION_DAYS,
        ),
        (
            "connections_webhookdelivery",
            f"{CONNECT_WEBHOOKS_PER_SECOND}/s",
            f"{settings.CONNECTIONS_RETENTION_DAYS:g} d",
            CONNECT_WEBHOOKS_PER_SECOND * day * settings.CONNECTIONS_RETENTION_DAYS,
        ),
    ]
    say("")
    say("| table | bytes per row (measured) | rows at the design scale | retention | size |")
    say("|---|---:|---|---|---:|")
    for table, how, retention, rows in design:
        measured_rows, size = sizes.get(table, (0, 0))
        per_row = size / measured_rows if measured_rows else float("nan")
        total_gb = per_row * rows / 1e9
        say(f"| `{table}` | {per_row:,.0f} | {how} ≈ {rows / 1e6:,.0f} M | {retention} | {total_gb:,.1f} GB |")
    say("")
    say(f"Measured on {args.rows:,} rows a table; sizes include indexes and TOAST.")


if __name__ == "__main__":
    main()
