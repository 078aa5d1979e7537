#!/usr/bin/env python
"""The support console on a big database: does every page stay under 300 ms?

Builds a fresh PostgreSQL database (SQL generate_series, no ORM) with 1 million device events and
1 million API-log rows (plus 10 thousand users, 40 thousand devices and identities, 100 thousand
action runs and Realtime deliveries), then renders each admin change list, the user page with its
inlines, the diagnosis page and the health page through Django's test client, signed in as a
member of the "Support" group. Each figure is the median of several renders after a warm-up,
beside the admin home page measured in the same run as the baseline.

    .venv/bin/python bench/admin.py                     # the full run, about 4 minutes
    .venv/bin/python bench/admin.py --events 100000 --api-calls 100000 --runs 3   # a quick look

Results go to bench/results/admin-latest.md (and a timestamped copy).
"""

# The SQL below is assembled from this file's own constants (never from input), so S608 does not apply.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import django_start, say  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_admin"
BUDGET_MS = 300.0
USERS = 10_000
DEVICES_PER_USER = 4
HEAVY_IDENTITY = "ti-heavy"


def md5_hex(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - matches the SQL's md5(), not security


def timed(label: str, work: Callable[[], object]) -> None:
    started = time.perf_counter()
    work()
    say(f"  {label}: {time.perf_counter() - started:.1f} s")


def fill(events: int, api_calls: int) -> None:
    """Rows shaped like production's: most users light, one heavy user whose Applet is diagnosed."""
    from django.db import connection

    devices = USERS * DEVICES_PER_USER
    statements = [
        (
            f"{USERS:,} users",
            f"""INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email,
                    is_staff, is_active, date_joined, public_id, is_ifttt_test_user, ifttt_disconnected_by)
                SELECT '!', false, 'user' || i, '', '', 'user' || i || '@example.com', false, true,
                       now() - interval '400 days', md5('u' || i), false, ''
                FROM generate_series(1, {USERS}) AS i""",
        ),
        (
            f"{devices:,} devices",
            f"""INSERT INTO devices_device (public_id, owner_id, name, kind, room, is_on, online, color,
                    api_key_prefix, created_at, updated_at)
                SELECT substr(md5('d' || i), 1, 16), (SELECT min(id) FROM accounts_user) + (i - 1) / {DEVICES_PER_USER},
                       (ARRAY['Desk lamp', 'Coffee maker', 'Hall thermostat', 'Porch sensor'])[1 + (i - 1) % 4]
                         || ' ' || i,
                       (ARRAY['light', 'plug', 'thermostat', 'motion_sensor'])[1 + (i - 1) % 4],
                       (ARRAY['Office', 'Kitchen', 'Hall', 'Porch'])[1 + (i - 1) % 4], false, true, '', '',
                       now() - interval '300 days', now()
                FROM generate_series(1, {devices}) AS i""",
        ),
        (
            f"{events:,} device events",
            # One event in a hundred is the heavy user's lamp switching on; the rest spread evenly.
            f"""WITH d AS (SELECT min(id) AS first FROM devices_device)
                INSERT INTO devices_deviceevent (public_id, device_id, owner_id, type, data, value, previous_value,
                    occurred_at, recorded_at, source)
                SELECT md5('e' || i), dev.id, dev.owner_id,
                       CASE WHEN i % 100 = 0 THEN 'switched_on'
                            ELSE (ARRAY['switched_on', 'switched_off', 'temperature', 'motion'])[1 + i % 4] END,
                       '{{{{}}}}'::jsonb, CASE WHEN i % 4 = 2 THEN 15 + (i % 10) ELSE NULL END, NULL,
                       now() - (({events} - i) * interval '2.5 seconds'),
                       now() - (({events} - i) * interval '2.5 seconds'), 'device'
                FROM generate_series({{lo}}, {{hi}}) AS i CROSS JOIN d
                JOIN devices_device dev
                  ON dev.id = d.first + CASE WHEN i % 100 = 0 THEN 0 ELSE (i::bigint * 7919) % {devices} END""",
        ),
        (
            f"{devices:,} trigger identities",
            f"""INSERT INTO triggers_triggeridentity (identity, user_id, trigger_slug, fields, first_seen_at,
                    last_polled_at, feed_complete)
                SELECT CASE WHEN dev.id = (SELECT min(id) FROM devices_device) THEN '{HEAVY_IDENTITY}'
                            ELSE 'ti-' || dev.id END,
                       dev.owner_id,
                       CASE dev.kind WHEN 'motion_sensor' THEN 'motion_detected'
                                     WHEN 'thermostat' THEN 'temperature_rises_above' ELSE 'device_switched_on' END,
                       CASE dev.kind WHEN 'thermostat'
                            THEN jsonb_build_object('device', dev.public_id, 'threshold', '22')
                            ELSE jsonb_build_object('device', dev.public_id) END,
                       now() - interval '200 days', now() - interval '1 hour', true
                FROM devices_device dev""",
        ),
        (
            "feed of the heavy identity",
            f"""INSERT INTO triggers_triggerfeeditem (identity_id, event_id, occurred_at, created_at)
                SELECT t.id, e.id, e.occurred_at, e.recorded_at
                FROM triggers_triggeridentity t
                JOIN devices_deviceevent e ON e.device_id = (SELECT min(id) FROM devices_device)
                     AND e.type = 'switched_on'
                WHERE t.identity = '{HEAVY_IDENTITY}'""",
        ),
        (
            f"{api_calls:,} API-log rows",
            # Every 200th call is a poll of the heavy identity; 2 % of calls are refused tokens.
            f"""WITH u AS (SELECT min(id) AS first FROM accounts_user)
                INSERT INTO iftttsvc_apicall (created_at, method, path, endpoint, slug, status_code, duration_ms,
                    request_id, realtime, test_mode, user_id, trigger_identity, items_returned, newest_event_id,
                    error_message, token_fingerprint)
                SELECT now() - (({api_calls} - i) * interval '2.5 seconds'), 'POST',
                       '/ifttt/v1/triggers/device_switched_on',
                       CASE WHEN i % 10 = 0 THEN 'action-run' ELSE 'trigger-poll' END,
                       'device_switched_on',
                       CASE WHEN i % 50 = 0 THEN 401 ELSE 200 END,
                       3 + (i % 17), md5('r' || i), i % 3 = 0, false,
                       u.first + CASE WHEN i % 200 = 0 THEN 0 ELSE i % {USERS} END,
                       CASE WHEN i % 200 = 0 THEN '{HEAVY_IDENTITY}' ELSE 'ti-' || (i % {devices}) END,
                       CASE WHEN i % 50 = 0 THEN NULL ELSE 2 END,
                       CASE WHEN i % 50 = 0 THEN '' ELSE substr(md5('e' || (i - i % 100)), 1, 24) END,
                       CASE WHEN i % 50 = 0 THEN 'The access token is invalid, expired or revoked.' ELSE '' END,
                       substr(md5('t' || (i % {USERS})), 1, 16)
                FROM generate_series({{lo}}, {{hi}}) AS i, u""",
        ),
        (
            "100,000 action runs",
            f"""WITH u AS (SELECT min(id) AS first FROM accounts_user)
                INSERT INTO actions_actionrun (public_id, user_id, action_slug, fields, status, message, request_id,
                    ifttt_source, created_at)
                SELECT md5('a' || i), u.first + i % {USERS}, 'switch_on', '{{}}'::jsonb,
                       CASE WHEN i % 20 = 0 THEN 'skipped' ELSE 'succeeded' END, 'Desk lamp: changed', md5('q' || i),
                       '{{}}'::jsonb, now() - ((100000 - i) * interval '25 seconds')
                FROM generate_series(1, 100000) AS i, u""",
        ),
    ]
    with connection.cursor() as cursor:
        for label, sql in statements:
            if "{lo}" not in sql:
                timed(label, lambda sql=sql: cursor.execute(sql))  # type: ignore[misc]
                continue
            # The big tables go in tenths, so a person watching sees it move.
            total = events if "deviceevent" in sql else api_calls
            started = time.perf_counter()
            step = max(total // 10, 1)
            for lo in range(1, total + 1, step):
                cursor.execute(sql.format(lo=lo, hi=min(lo + step - 1, total)))
                done = min(lo + step - 1, total)
                say(f"  {label}: {done:,}/{total:,} ({time.perf_counter() - started:.0f} s)")
        timed("ANALYZE", lambda: cursor.execute("ANALYZE"))


def realtime_fill() -> None:
    """100 thousand Realtime deliveries, where the triggers app records them."""
    from django.apps import apps
    from django.db import connection

    try:
        apps.get_model("triggers", "RealtimeDelivery")
    except LookupError:
        say("  (no Realtime deliveries recorded by this installation)")
        return
    with connection.cursor() as cursor:
        timed(
            "100,000 Realtime deliveries",
            lambda: cursor.execute(
                """INSERT INTO triggers_realtimedelivery (request_id, status, identities, identity_count, attempts,
                       pending_since, created_at, completed_at, latency_ms, response_status, error)
                   SELECT md5('n' || i), CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'delivered' END,
                          jsonb_build_array('ti-' || i), 1, 1, now() - ((100000 - i) * interval '25 seconds'),
                          now() - ((100000 - i) * interval '25 seconds'),
                          now() - ((100000 - i) * interval '25 seconds'),
                          120, CASE WHEN i % 100 = 0 THEN 500 ELSE 200 END, ''
                   FROM generate_series(1, 100000) AS i"""
            ),
        )
        cursor.execute("ANALYZE triggers_realtimedelivery")


def pages() -> list[tuple[str, str]]:
    from django.contrib import admin
    from django.urls import reverse

    from accounts.models import User
    from triggers.models import TriggerIdentity

    heavy = TriggerIdentity.objects.get(identity=HEAVY_IDENTITY)
    found: list[tuple[str, str]] = [("admin home (baseline)", reverse("admin:index"))]
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label_lower):
        if model._meta.app_label in ("auth", "axes", "sessions", "contenttypes"):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        found.append((f"change list: {model._meta.label}", url))
    events = reverse("admin:devices_deviceevent_changelist")
    calls = reverse("admin:iftttsvc_apicall_changelist")
    found += [
        ("events filtered by type", f"{events}?type__exact=temperature"),
        ("events searched by owner email", f"{events}?q=user5000@example.com"),
        ("API log filtered: trigger polls, refused", f"{calls}?endpoint=trigger-poll&status=401"),
        ("API log searched by X-Request-ID", f"{calls}?q={md5_hex('r1')}"),
        ("API log searched by trigger identity", f"{calls}?q={HEAVY_IDENTITY}"),
        ("user page with inlines (heavy user)", reverse("admin:accounts_user_change", args=[heavy.user_id])),
        ("trigger identity page (heavy)", reverse("admin:triggers_triggeridentity_change", args=[heavy.pk])),
        ("diagnosis page (heavy identity)", f"{reverse('support:diagnosis')}?identity={HEAVY_IDENTITY}"),
        (
            "diagnosis by user + trigger",
            f"{reverse('support:diagnosis')}?user=user1@example.com&trigger=device_switched_on",
        ),
        ("health dashboard (24 h)", reverse("support:health")),
    ]
    assert User.objects.exists()
    return found


def measure(runs: int) -> list[tuple[str, str, float, int]]:
    from django.test import Client

    from accounts.models import User
    from support.services import support_group_ensure

    person = User.objects.create_user("bench-support", "bench-support@example.com", "x", is_staff=True)
    person.groups.add(support_group_ensure())
    client = Client()
    client.force_login(person)
    rows = []
    for label, url in pages():
        response = client.get(url)  # warm-up (and check)
        if response.status_code != 200:
            raise SystemExit(f"{label}: {url} answered {response.status_code}; fix it before benchmarking.")
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        rows.append((label, url, statistics.median(times), len(response.content)))
        say(f"  {statistics.median(times):7.1f} ms  {label}")
    return rows


def report(rows: list[tuple[str, str, float, int]], events: int, api_calls: int, runs: int, version: str) -> str:
    baseline = rows[0][2]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, {version}; "
        f"{events:,} device events, {api_calls:,} API-log rows, {USERS:,} users; Django test client signed in "
        f"as a Support-group member; median of {runs} renders after a warm-up.",
        "",
        "| page | median ms | × baseline | under 300 ms |",
        "|---|---:|---:|---|",
    ]
    for label, _url, ms, _size in rows:
        lines.append(f"| {label} | {ms:.1f} | {ms / baseline:.1f} | {'yes' if ms < BUDGET_MS else '**no**'} |")
    slowest = max(rows, key=lambda r: r[2])
    lines += ["", f"- slowest: {slowest[0]} at {slowest[2]:.1f} ms (budget {BUDGET_MS:.0f} ms)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL database this script may drop and recreate (default: %(default)s)",
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--api-calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="renders per page (default: %(default)s)")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run filled")
    args = parser.parse_args()

    django_start(args.database_url, fresh=not args.reuse, IFTTT_REALTIME_URL=os.environ.get("IFTTT_REALTIME_URL", ""))
    from django.db import connection

    if not args.reuse:
        say("Filling (SQL, no ORM):")
        fill(args.events, args.api_calls)
        realtime_fill()
    else:
        from accounts.models import User

        User.objects.filter(username="bench-support").delete()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = f"PostgreSQL {cursor.fetchone()[0]}"
    say(f"Rendering each page {args.runs} times:")
    rows = measure(args.runs)
    text = report(rows, args.events, args.api_calls, args.runs, version)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"admin-{stamp}.md", "admin-latest.md"):
        (RESULTS_DIR / name).write_text(text)
    say("")
    say(text)
    over = [r for r in rows if r[2] >= BUDGET_MS]
    if over:
        say(f"{len(over)} page(s) over {BUDGET_MS:.0f} ms: see the table above.")
    say("Results: bench/results/admin-latest.md. Keep the database with --reuse to re-measure after a change.")


if __name__ == "__main__":
    main()
