#!/usr/bin/env python
"""Trigger polling under load: does a poll cost O(limit) or O(history)?

For each size (10 thousand, then 1 million events over 100 thousand trigger identities) this script
builds a fresh PostgreSQL database with SQL (generate_series, no ORM), starts gunicorn with the
bench settings (the service's own settings plus one bare endpoint), and measures with 16 concurrent
clients the latency (p50/p99) and throughput of `POST /ifttt/v1/triggers/<slug>` with limit 50,
rotating over many identities and tokens, beside the bare endpoint: same stack and authentication,
a fixed 50-item body. Every figure is the median of several rounds, bare and poll interleaved.

    .venv/bin/python bench/poll.py                       # the full run, about 6 minutes
    .venv/bin/python bench/poll.py --sizes 10000 --rounds 2 --duration 3   # a quick look

Settings from the environment pass through to the server, so `IFTTT_API_LOG_ENABLED=0 python
bench/poll.py` measures without the API log. Results go to bench/results/ (JSON and Markdown).
The load generator is `wrk` (apt-get install wrk); without it a Python client is used, which
competes with the server for the CPU, so its figures are pessimistic.
"""

# The SQL below is assembled from this file's own constants (never from input), so S608 does not apply.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extensions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import (  # noqa: E402
    children,
    cpu_by_pid,
    cpu_used,
    database_backends,
    database_name,
    database_recreate,
    maintenance_url,
    say,
)

RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_poll"
POLL_LIMIT = 50
# The polled users. Each has 50 devices and 8 identities (all five triggers, a second Applet on
# the same light, and two more temperature thresholds), so the load rotates over 256 identities
# and 32 tokens, every one with at least 50 items on its feed.
HOT_USERS = 32
HOT_DEVICES = 50
# Every user: a light, a plug, a thermostat and a motion sensor; one identity per trigger.
USERS = 20_000
BASE_DEVICES = 4
BASE_IDENTITIES = 5
HOT_EXTRA_IDENTITIES = 3
# A hot user's minimum history: 50 devices added, 100 switchings, 100 readings, 50 motions.
HOT_MINIMUM = HOT_DEVICES + 100 + 100 + 50
COLD_BATCH = 100_000

# Poll CPU (web + database) per request against the floor's (bench/floor.py, the three
# statements), and poll p50 at the largest size against the smallest, both per round.
TARGET_CPU_OVER_FLOOR = 1.3
TARGET_P50_GROWTH = 1.1
# What each endpoint is, in the order a round measures them (rotated every round).
ENDPOINTS = {
    "floor": "/_floor/triggers/{slug}",
    "floor1": "/_floor1/triggers/{slug}",
    "poll": "/ifttt/v1/triggers/{slug}",
    "bare": "/ifttt/v1/_bench/bare",
}

# -- the world -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """How `events` events are spread: the hot users' long histories, and everyone else's."""

    events: int
    users: int
    hot_users: int
    toggles: int  # per hot user: the living-room lamp switched on and off
    readings: int  # per hot user: thermostat readings (the newest 100 alternate 26 °C / 18 °C)
    motions: int  # per hot user
    cold_events: int

    @classmethod
    def sized(cls, events: int) -> World:
        """The hot users hold 40 % of the history (at least their minimum), split 2 : 2 : 1."""
        floor = HOT_MINIMUM * HOT_USERS
        if events < floor:
            raise SystemExit(f"--sizes: {events:,} events is too few; the polled users alone need {floor:,}.")
        per_user = max(HOT_MINIMUM, int(events * 0.4) // HOT_USERS)
        extra = per_user - HOT_MINIMUM
        toggles = 100 + (2 * extra // 5) // 2 * 2  # even: as many on as off
        readings = 100 + 2 * extra // 5
        motions = per_user - HOT_DEVICES - toggles - readings
        hot_total = HOT_USERS * (HOT_DEVICES + toggles + readings + motions)
        return cls(events, USERS, HOT_USERS, toggles, readings, motions, events - hot_total)

    @property
    def identities(self) -> int:
        return self.users * BASE_IDENTITIES + self.hot_users * HOT_EXTRA_IDENTITIES


# Device ids are laid out so that SQL can name a user's devices by arithmetic.
def _base_device(user: str, k: int) -> str:
    return f"(({user} - 1) * {BASE_DEVICES} + {k})"


LIGHT, PLUG, THERMOSTAT, SENSOR = 1, 2, 3, 4
DEVICE_PUBLIC_ID = "substr(md5('device' || {id}), 1, 16)"

SQL_USERS = """
INSERT INTO accounts_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                           is_staff, is_active, date_joined, public_id, is_ifttt_test_user, ifttt_disconnected_by)
SELECT u, '!', NULL, false, 'bench-user-' || u, '', '', '', false, true, %(t0)s - interval '500 days',
       substr(md5('user' || u), 1, 24), false, ''
FROM generate_series(1, %(users)s) AS u
"""

SQL_DEVICES = f"""
INSERT INTO devices_device (id, public_id, owner_id, name, kind, room, is_on, online, color, target_temperature,
                            temperature, temperature_measured_at, api_key_hash, api_key_prefix, created_at,
                            updated_at)
SELECT {_base_device("u", 0)} + k, {DEVICE_PUBLIC_ID.format(id=_base_device("u", 0) + " + k")}, u,
       (ARRAY['Living room lamp', 'Kitchen plug', 'Hallway thermostat', 'Porch sensor'])[k],
       (ARRAY['light', 'plug', 'thermostat', 'motion_sensor'])[k],
       (ARRAY['Living room', 'Kitchen', 'Hallway', 'Porch'])[k],
       k <= 2, true, CASE WHEN k = 1 THEN 'warmwhite' ELSE '' END,
       CASE WHEN k = 3 THEN 21.0 END, CASE WHEN k = 3 THEN 21.5 END, CASE WHEN k = 3 THEN %(t0)s END,
       NULL, '', %(t0)s - interval '400 days', %(t0)s
FROM generate_series(1, %(users)s) AS u, generate_series(1, {BASE_DEVICES}) AS k
UNION ALL
SELECT %(users)s * {BASE_DEVICES} + (u - 1) * %(extra)s + j,
       {DEVICE_PUBLIC_ID.format(id=f"(%(users)s * {BASE_DEVICES} + (u - 1) * %(extra)s + j)")}, u,
       'Lamp ' || j, 'light', (ARRAY['Bedroom', 'Office', 'Garden'])[j %% 3 + 1], false, true, '',
       NULL, NULL, NULL, NULL, '', %(t0)s - interval '400 days' + j * interval '1 day', %(t0)s
FROM generate_series(1, %(hot)s) AS u, generate_series(1, %(extra)s) AS j
"""

_EVENT_COLUMNS = (
    "id, public_id, device_id, owner_id, type, data, value, previous_value, occurred_at, recorded_at, source, "
    "external_id"
)


def _events_insert(select: str) -> str:
    """Wrap a SELECT of (id, device_id, owner_id, type, data, value, previous_value, occurred_at)."""
    return f"""
INSERT INTO devices_deviceevent ({_EVENT_COLUMNS})
SELECT id, md5('event' || id), device_id, owner_id, type, data, value, previous_value, occurred_at, occurred_at,
       'device', NULL
FROM ({select}) AS generated
"""


# Each hot device added, oldest first.
SQL_HOT_ADDED = _events_insert("""
SELECT %(first_id)s + row_number() OVER (ORDER BY d.id) - 1 AS id, d.id AS device_id, d.owner_id,
       'device_added' AS type, '{}'::jsonb AS data, NULL::float8 AS value, NULL::float8 AS previous_value,
       d.created_at AS occurred_at
FROM devices_device AS d WHERE d.owner_id <= %(hot)s
""")

# k = 0 is the newest; on and off alternate, every two hours.
SQL_HOT_TOGGLES = _events_insert(f"""
SELECT %(first_id)s + g AS id, {_base_device("u", LIGHT)} AS device_id, u AS owner_id,
       CASE WHEN k %% 2 = 0 THEN 'switched_on' ELSE 'switched_off' END AS type, '{{}}'::jsonb AS data,
       NULL::float8 AS value, NULL::float8 AS previous_value,
       %(t0)s - k * interval '2 hours' - u * interval '1 second' AS occurred_at
FROM generate_series(0, %(hot)s * %(per)s - 1) AS g,
     LATERAL (SELECT g / %(per)s + 1 AS u, g %% %(per)s AS k) AS at
""")

# A reading every 5 minutes. The newest 100 alternate 26 / 18 °C, so the thresholds 20, 22 and 24
# each see 50 crossings there; older readings follow a daily-ish wave with a little noise, crossing
# about once every 48 readings, as a real thermostat's would. `previous_value` is the next older one.
SQL_HOT_READINGS = _events_insert(f"""
SELECT id, device_id, owner_id, 'temperature' AS type, '{{}}'::jsonb AS data, value,
       lead(value) OVER (PARTITION BY owner_id ORDER BY k) AS previous_value, occurred_at
FROM (
    SELECT %(first_id)s + g AS id, {_base_device("u", THERMOSTAT)} AS device_id, u AS owner_id, k,
           CASE WHEN k < 100 THEN CASE WHEN k %% 2 = 0 THEN 26.0 ELSE 18.0 END
                ELSE round((22 + 6 * sin(2 * pi() * k / 48.0) + ((k * 7919) %% 13) / 13.0 - 0.5)::numeric, 1)
           END::float8 AS value,
           %(t0)s - k * interval '5 minutes' - u * interval '1 second' AS occurred_at
    FROM generate_series(0, %(hot)s * %(per)s - 1) AS g,
         LATERAL (SELECT g / %(per)s + 1 AS u, g %% %(per)s AS k) AS at
) AS readings
""")

SQL_HOT_MOTIONS = _events_insert(f"""
SELECT %(first_id)s + g AS id, {_base_device("u", SENSOR)} AS device_id, u AS owner_id, 'motion' AS type,
       '{{}}'::jsonb AS data, NULL::float8 AS value, NULL::float8 AS previous_value,
       %(t0)s - k * interval '7 minutes' - u * interval '1 second' AS occurred_at
FROM generate_series(0, %(hot)s * %(per)s - 1) AS g,
     LATERAL (SELECT g / %(per)s + 1 AS u, g %% %(per)s AS k) AS at
""")

# Everyone else: event g belongs to cold user `u`, `r` places it in that user's history (0 newest),
# and `c` picks one of ten kinds of event, some matching no trigger (colour, target temperature).
SQL_COLD = _events_insert(f"""
SELECT %(first_id)s + g AS id,
       CASE WHEN c IN (0, 1, 8) THEN {_base_device("u", LIGHT)} WHEN c IN (2, 3) THEN {_base_device("u", PLUG)}
            WHEN c = 7 THEN {_base_device("u", SENSOR)} ELSE {_base_device("u", THERMOSTAT)} END AS device_id,
       u AS owner_id,
       (ARRAY['switched_on', 'switched_off', 'switched_on', 'switched_off', 'temperature', 'temperature',
              'temperature', 'motion', 'color_changed', 'target_temperature_set'])[c + 1] AS type,
       CASE WHEN c = 8 THEN jsonb_build_object('color', (ARRAY['red', 'teal', '#ffaa00'])[g %% 3 + 1])
            WHEN c = 9 THEN jsonb_build_object('target_temperature', 19 + g %% 4)
            ELSE '{{}}'::jsonb END AS data,
       CASE WHEN c IN (4, 5, 6) THEN 16 + ((g * 7919) %% 120) / 10.0
            WHEN c = 9 THEN 19 + g %% 4 END::float8 AS value,
       CASE WHEN c IN (4, 5, 6) THEN 16 + (((g + 1) * 104729) %% 120) / 10.0 END::float8 AS previous_value,
       %(t0)s - interval '1 hour' - r * interval '3 hours' - (u %% 3600) * interval '1 second' AS occurred_at
FROM generate_series(%(lo)s::bigint, %(hi)s - 1) AS g,
     LATERAL (SELECT %(hot)s + 1 + g %% %(cold_users)s AS u, g / %(cold_users)s AS r) AS who,
     LATERAL (SELECT ((r + u) %% 10)::int AS c) AS kind
""")

# One identity per trigger for every user (5 %% of the cold ones tombstoned, as Applets get
# turned off), plus the hot users' three extra Applets. Field values are stored exactly as IFTTT
# sends them (text), so a poll finds its identity unchanged and takes the ordinary path.
_IDENTITY_STRING = "md5('identity' || id) || substr(md5('ifttt' || id), 1, 8)"
SQL_IDENTITIES = f"""
INSERT INTO triggers_triggeridentity (id, identity, user_id, trigger_slug, fields, first_seen_at, last_polled_at,
                                      last_notified_at, deleted_at, feed_complete)
SELECT id, {_IDENTITY_STRING}, u, slug, fields, %(t0)s - interval '300 days',
       %(t0)s - (id %% 3600) * interval '1 second', NULL,
       CASE WHEN u > %(hot)s AND id %% 20 = 0 THEN %(t0)s - interval '10 days' END, true
FROM (
    SELECT (u - 1) * {BASE_IDENTITIES} + t AS id, u,
           (ARRAY['device_switched_on', 'device_switched_off', 'temperature_rises_above', 'motion_detected',
                  'new_device_added'])[t] AS slug,
           CASE t
               WHEN 1 THEN jsonb_build_object('device', {DEVICE_PUBLIC_ID.format(id=_base_device("u", LIGHT))})
               WHEN 2 THEN jsonb_build_object('device', {
    DEVICE_PUBLIC_ID.format(
        id=f"CASE WHEN u <= %(hot)s OR u %% 2 = 0 THEN {_base_device('u', LIGHT)} ELSE {_base_device('u', PLUG)} END"
    )
})
               WHEN 3 THEN jsonb_build_object(
                   'device', {DEVICE_PUBLIC_ID.format(id=_base_device("u", THERMOSTAT))},
                   'threshold', CASE WHEN u <= %(hot)s THEN '22' ELSE (18 + u %% 9)::text END)
               WHEN 4 THEN jsonb_build_object('device', {DEVICE_PUBLIC_ID.format(id=_base_device("u", SENSOR))})
               ELSE '{{}}'::jsonb
           END AS fields
    FROM generate_series(1, %(users)s) AS u, generate_series(1, {BASE_IDENTITIES}) AS t
    UNION ALL
    SELECT %(users)s * {BASE_IDENTITIES} + (u - 1) * {HOT_EXTRA_IDENTITIES} + x, u,
           CASE WHEN x = 1 THEN 'device_switched_on' ELSE 'temperature_rises_above' END,
           CASE WHEN x = 1 THEN jsonb_build_object('device', {DEVICE_PUBLIC_ID.format(id=_base_device("u", LIGHT))})
                ELSE jsonb_build_object('device', {DEVICE_PUBLIC_ID.format(id=_base_device("u", THERMOSTAT))},
                                        'threshold', CASE WHEN x = 2 THEN '20' ELSE '24' END)
           END
    FROM generate_series(1, %(hot)s) AS u, generate_series(1, {HOT_EXTRA_IDENTITIES}) AS x
) AS wanted
"""

# The feeds the service would have written: each live identity gets every event its trigger's
# `matches` accepts (the same predicates as triggers/catalog.py, in SQL).
SQL_FEED_DEVICE_TRIGGERS = """
INSERT INTO triggers_triggerfeeditem (identity_id, event_id, occurred_at, created_at)
SELECT i.id, e.id, e.occurred_at, e.recorded_at
FROM triggers_triggeridentity AS i
JOIN devices_device AS d ON d.public_id = i.fields ->> 'device' AND d.owner_id = i.user_id
JOIN devices_deviceevent AS e ON e.device_id = d.id AND e.type = CASE i.trigger_slug
    WHEN 'device_switched_on' THEN 'switched_on' WHEN 'device_switched_off' THEN 'switched_off'
    WHEN 'motion_detected' THEN 'motion' WHEN 'temperature_rises_above' THEN 'temperature' END
WHERE i.deleted_at IS NULL AND i.trigger_slug <> 'new_device_added'
  AND (i.trigger_slug <> 'temperature_rises_above'
       OR (e.value > (i.fields ->> 'threshold')::float8
           AND (e.previous_value IS NULL OR e.previous_value <= (i.fields ->> 'threshold')::float8)))
"""

SQL_FEED_NEW_DEVICES = """
INSERT INTO triggers_triggerfeeditem (identity_id, event_id, occurred_at, created_at)
SELECT i.id, e.id, e.occurred_at, e.recorded_at
FROM triggers_triggeridentity AS i
JOIN devices_deviceevent AS e ON e.owner_id = i.user_id AND e.type = 'device_added'
WHERE i.deleted_at IS NULL AND i.trigger_slug = 'new_device_added'
"""

SQL_TOKENS = """
INSERT INTO oauth2_provider_accesstoken (token, token_checksum, expires, scope, application_id, user_id, created,
                                         updated, source_refresh_token_id, id_token_id)
SELECT token, encode(sha256(convert_to(token, 'UTF8')), 'hex'), %(t0)s + interval '100 years', 'ifttt',
       %(application)s, u, %(t0)s - interval '200 days', %(t0)s - interval '200 days', NULL, NULL
FROM (SELECT u, 'bench-' || u || '-' || md5('token' || u || %(salt)s) AS token
      FROM generate_series(1, %(users)s) AS u) AS tokens
"""

SQL_POLLED = """
SELECT i.identity, i.trigger_slug, i.fields, t.token, u.public_id,
       (SELECT count(*) FROM triggers_triggerfeeditem AS f WHERE f.identity_id = i.id) AS feed_length,
       (SELECT count(*) FROM devices_deviceevent AS e WHERE e.owner_id = i.user_id) AS history_length
FROM triggers_triggeridentity AS i
JOIN oauth2_provider_accesstoken AS t ON t.user_id = i.user_id
JOIN accounts_user AS u ON u.id = i.user_id
WHERE i.user_id <= %(hot)s AND i.deleted_at IS NULL
ORDER BY i.id
"""

# -- output ----------------------------------------------------------------------------------------


class Step:
    """Prints `[n/total] what … seconds` so a long fill shows where it is."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def run(self, what: str, cursor: Any, sql: str, params: dict[str, Any] | None = None) -> int:
        self.done += 1
        started = time.perf_counter()
        print(f"    [{self.done:>2}/{self.total}] {what} …", end="", flush=True)
        cursor.execute(sql, params or {})
        rows = max(cursor.rowcount, 0)
        counted = f" {rows:,} rows," if rows else ""
        print(f"{counted} {time.perf_counter() - started:.1f} s", flush=True)
        return rows


# -- database --------------------------------------------------------------------------------------


def server_env(url: str, keys: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=keys["secret"],
        IFTTT_SERVICE_KEY=keys["service"],
        IFTTT_CLIENT_SECRET=keys["client"],
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # Nothing leaves the machine during a benchmark.
        IFTTT_REALTIME_URL="",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        PYTHONPATH=str(ROOT),
    )
    # A worker's connection outlives a round: a backend that closes mid-round takes the CPU it used
    # in that round with it (the database CPU figure would be short). Production's 60 s changes one
    # reconnect a minute, nothing per request.
    env.setdefault("DATABASE_CONN_MAX_AGE", "3600")
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _bulk_indexes(cursor: Any, table: str) -> list[tuple[str, str]]:
    """The table's plain indexes (not those behind a constraint): cheaper to rebuild than to maintain."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = x.indexrelid)
        """,
        (table,),
    )
    return [(name, ddl) for name, ddl in cursor.fetchall()]


def world_fill(url: str, world: World, env: dict[str, str]) -> dict[str, Any]:
    """A fresh database holding `world`; returns what was built and how long it took."""
    started = time.perf_counter()
    say(f"  creating the database {database_name(url)} and migrating it …")
    database_recreate(url)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "setup_ifttt")
    connection = psycopg2.connect(url)
    cursor = connection.cursor()
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SET maintenance_work_mem = '256MB'")
    # Check foreign keys per statement: deferred checks would block rebuilding the indexes.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    client_id = env.get("IFTTT_CLIENT_ID") or "ifttt"
    cursor.execute("SELECT id FROM oauth2_provider_application WHERE client_id = %s", (client_id,))
    row = cursor.fetchone()
    if row is None:
        raise SystemExit("setup_ifttt did not create IFTTT's OAuth application; run it by hand to see why.")
    t0 = datetime.now(UTC).replace(microsecond=0)
    base = {"t0": t0, "users": world.users, "hot": world.hot_users}
    cold_batches = max(1, -(-world.cold_events // COLD_BATCH))
    # Indexes are built after each bulk insert (far cheaper than maintaining them row by row), and
    # the events' indexes and statistics must exist before the feeds are derived from them.
    event_indexes = _bulk_indexes(cursor, "devices_deviceevent")
    feed_indexes = _bulk_indexes(cursor, "triggers_triggerfeeditem")
    step = Step(total=12 + cold_batches + len(event_indexes) + len(feed_indexes))
    for name, _ddl in [*event_indexes, *feed_indexes]:
        cursor.execute(f'DROP INDEX "{name}"')
    say(f"  filling: {world.events:,} events, {world.users:,} users, {world.identities:,} identities")
    step.run("users", cursor, SQL_USERS, base)
    step.run("devices", cursor, SQL_DEVICES, {**base, "extra": HOT_DEVICES - BASE_DEVICES})
    next_id = 1
    for what, sql, per in (
        ("polled users: devices added", SQL_HOT_ADDED, 0),
        ("polled users: lamp switched on/off", SQL_HOT_TOGGLES, world.toggles),
        ("polled users: thermostat readings", SQL_HOT_READINGS, world.readings),
        ("polled users: motion", SQL_HOT_MOTIONS, world.motions),
    ):
        next_id += step.run(what, cursor, sql, {**base, "first_id": next_id, "per": per})
    cold_users = world.users - world.hot_users
    for batch in range(cold_batches):
        lo, hi = batch * COLD_BATCH, min(world.cold_events, (batch + 1) * COLD_BATCH)
        what = f"other users' events {hi / max(world.cold_events, 1):>4.0%}"
        params = {**base, "first_id": next_id, "lo": lo, "hi": hi, "cold_users": cold_users}
        step.run(what, cursor, SQL_COLD, params)
    for name, ddl in event_indexes:
        step.run(f"index {name}", cursor, ddl)
    step.run("trigger identities", cursor, SQL_IDENTITIES, base)
    step.run(
        "statistics",
        cursor,
        "ANALYZE accounts_user, devices_device, devices_deviceevent, triggers_triggeridentity",
    )
    step.run("feeds: device triggers", cursor, SQL_FEED_DEVICE_TRIGGERS)
    step.run("feeds: new devices", cursor, SQL_FEED_NEW_DEVICES)
    for name, ddl in feed_indexes:
        step.run(f"index {name}", cursor, ddl)
    salt = secrets.token_hex(4)
    step.run("access tokens", cursor, SQL_TOKENS, {**base, "application": row[0], "salt": salt})
    for table in ("accounts_user", "devices_device", "devices_deviceevent", "triggers_triggeridentity"):
        cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {table}))", (table,))
    cursor.execute("SELECT count(*) FROM devices_deviceevent")
    stored = cursor.fetchone()[0]
    if stored != world.events:
        raise SystemExit(f"Expected {world.events:,} events, stored {stored:,}: the fill SQL is out of step.")
    connection.commit()
    connection.autocommit = True
    step.run("VACUUM ANALYZE", cursor, "VACUUM ANALYZE")
    cursor.execute("SELECT count(*) FROM triggers_triggerfeeditem")
    feed_items = cursor.fetchone()[0]
    cursor.execute("SELECT count(*) FROM triggers_triggeridentity")
    identities = cursor.fetchone()[0]
    cursor.execute("SELECT trigger_slug, count(*) FROM triggers_triggeridentity GROUP BY 1 ORDER BY 1")
    mix = dict(cursor.fetchall())
    cursor.execute("SELECT pg_database_size(current_database())")
    size = cursor.fetchone()[0]
    connection.close()
    seconds = time.perf_counter() - started
    say(f"  filled in {seconds:.0f} s: {feed_items:,} feed items, database {size / 2**20:,.0f} MB")
    return {
        "events": world.events,
        "users": world.users,
        "identities": identities,
        "identity_mix": mix,
        "feed_items": feed_items,
        "database_mb": round(size / 2**20),
        "fill_seconds": round(seconds, 1),
        "per_polled_user": {
            "devices_added": HOT_DEVICES,
            "switchings": world.toggles,
            "readings": world.readings,
            "motions": world.motions,
        },
    }


@dataclass(frozen=True)
class Target:
    identity: str
    slug: str
    fields: dict[str, Any]
    token: str
    user_public_id: str
    feed_length: int
    history_length: int

    def body(self) -> str:
        return json.dumps(
            {
                "trigger_identity": self.identity,
                "triggerFields": self.fields,
                "limit": POLL_LIMIT,
                "user": {"id": self.user_public_id, "timezone": "Europe/Amsterdam"},
                "ifttt_source": {"id": "117", "url": "https://ifttt.com/applets/117"},
            },
            separators=(",", ":"),
        )


def polled_targets(url: str) -> list[Target]:
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute(SQL_POLLED, {"hot": HOT_USERS})
        targets = [Target(*row) for row in cursor.fetchall()]
    connection.close()
    short = [t for t in targets if t.feed_length < POLL_LIMIT]
    if short:
        raise SystemExit(f"{len(short)} polled identities have fewer than {POLL_LIMIT} feed items; the fill is wrong.")
    # Interleave users so consecutive requests are different people, as IFTTT's polls are.
    by_user: dict[str, list[Target]] = {}
    for target in targets:
        by_user.setdefault(target.token, []).append(target)
    columns = list(by_user.values())
    return [column[n] for n in range(max(map(len, columns))) for column in columns if n < len(column)]


def database_counts(url: str, since: datetime) -> dict[str, int]:
    """Identities, feed items, and how many polled identities were recorded as polled after `since`."""
    connection = psycopg2.connect(url)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM triggers_triggeridentity), (SELECT count(*) FROM triggers_triggerfeeditem),"
            " (SELECT count(*) FROM triggers_triggeridentity WHERE user_id <= %s AND last_polled_at > %s)",
            (HOT_USERS, since),
        )
        identities, feed_items, polled = cursor.fetchone()
    connection.close()
    return {"identities": identities, "feed_items": feed_items, "recently_polled": polled}


# -- the server ------------------------------------------------------------------------------------


def free_port(first: int, last: int) -> int:
    for port in range(first, last + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"No free TCP port in {first}-{last}; pass --port.")


class Server:
    """gunicorn with the bench settings, on 127.0.0.1:`port`: the service, and the floor beside it."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log: Path) -> None:
        self.env, self.port, self.workers, self.log = env, port, workers, log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [
            sys.executable, "-m", "gunicorn", "bench.floor:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--chdir", str(ROOT),
            "--log-level", "warning", "--error-logfile", str(self.log), "--timeout", "60",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}; see {self.log}.")
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/ifttt/v1/status",
                    headers={"IFTTT-Service-Key": self.env["IFTTT_SERVICE_KEY"]},
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200 and len(self.worker_pids()) >= self.workers:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer /ifttt/v1/status within a minute; see {self.log}.")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return children(self.process.pid)


def _machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (all cores, from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# -- load ------------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
-- Rotates over prepared requests (path, token, body per line), each thread from its own offset.
local prepared = {}
local counter = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local path, token, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {["Host"] = wrk.host .. ":" .. wrk.port, ["Authorization"] = "Bearer " .. token,
                     ["Content-Type"] = "application/json"}
    prepared[#prepared + 1] = wrk.format("POST", path, headers, body)
  end
  file:close()
  counter = math.random(#prepared)
end

function request()
  counter = counter + 1
  return prepared[(counter % #prepared) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"errors":{"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class Sample:
    events: int
    endpoint: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    round: int = 0
    web_cpu_ms: float = 0.0  # gunicorn workers' CPU per request
    db_cpu_ms: float = 0.0  # PostgreSQL backends' CPU per request
    cpu_ms: float = 0.0  # the two together
    db_backends_closed: int = 0  # backends that ended mid-measurement (their CPU in it is missing)
    # Cores busy with anything else (the load generator, and whatever else runs on the machine).
    other_cores_busy: float = 0.0


@dataclass
class Load:
    """Drives `connections` concurrent clients at the server with wrk, or Python threads without it."""

    base_url: str
    connections: int
    workdir: Path
    wrk: str | None = field(default_factory=lambda: shutil.which("wrk"))

    @property
    def client(self) -> str:
        return "wrk (1 thread, Lua script)" if self.wrk else "Python threads (wrk not installed)"

    def prepare(self, name: str, path: str, targets: list[Target]) -> Path:
        lines = [f"{path.format(slug=t.slug)}\t{t.token}\t{t.body()}" for t in targets]
        requests = self.workdir / f"{name}.tsv"
        requests.write_text("\n".join(lines) + "\n")
        return requests

    def run(self, requests: Path, seconds: float) -> dict[str, Any]:
        if self.wrk:
            return self._wrk(requests, seconds)
        return self._python(requests, seconds)

    def _wrk(self, requests: Path, seconds: float) -> dict[str, Any]:
        script = self.workdir / "rotate.lua"
        if not script.exists():
            script.write_text(WRK_SCRIPT)
        command = [
            self.wrk or "wrk", "-t1", f"-c{self.connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(script), self.base_url, "--", str(requests),
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        line = next((line for line in output.splitlines() if line.startswith("BENCH_JSON ")), None)
        if line is None:
            raise SystemExit(f"wrk printed no result:\n{output}")
        raw = json.loads(line.removeprefix("BENCH_JSON "))
        return {
            "requests": raw["requests"],
            "seconds": raw["duration_us"] / 1e6,
            "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000,
            "errors": sum(raw["errors"].values()),
        }

    def _python(self, requests: Path, seconds: float) -> dict[str, Any]:
        import http.client

        prepared = []
        for line in requests.read_text().splitlines():
            path, token, body = line.split("\t", 2)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            prepared.append((path, body.encode(), headers))
        parts = urlsplit(self.base_url)
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def client(offset: int) -> None:
            n = offset
            mine: list[float] = []
            while time.perf_counter() < stop:
                path, body, headers = prepared[n % len(prepared)]
                n += 1
                started = time.perf_counter()
                try:
                    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                    connection.request("POST", path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    connection.close()
                    ok = response.status == 200
                except OSError:
                    ok = False
                mine.append(time.perf_counter() - started)
                if not ok:
                    with lock:
                        errors[0] += 1
            with lock:
                latencies.extend(mine)

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n * 7,)) for n in range(self.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        latencies.sort()
        return {
            "requests": len(latencies),
            "seconds": elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "errors": errors[0],
        }


def check_responses(base_url: str, targets: list[Target]) -> None:
    """Every polled identity answers 200 with exactly `limit` items, newest first, and the floors answer
    the very same bytes; the bare endpoint answers its 50 items."""
    for target in targets:
        bodies = {}
        for endpoint, path in ENDPOINTS.items():
            request = urllib.request.Request(
                base_url + path.format(slug=target.slug),
                data=target.body().encode(),
                headers={"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    bodies[endpoint] = response.read()
            except urllib.error.HTTPError as exc:
                raise SystemExit(f"{path} for {target.identity} answered {exc.code}: {exc.read()[:300]!r}") from None
            items = json.loads(bodies[endpoint])["data"]
            stamps = [item["meta"]["timestamp"] for item in items]
            if len(items) != POLL_LIMIT or stamps != sorted(stamps, reverse=True):
                raise SystemExit(f"{path} for {target.identity} returned {len(items)} items, not {POLL_LIMIT} newest.")
        for floor in ("floor", "floor1"):
            if bodies[floor] != bodies["poll"]:
                raise SystemExit(f"The {floor} and the poll answered {target.identity} differently: not a floor.")


@dataclass
class Size:
    """One size's database, its polled identities and the server in front of it."""

    world: World
    url: str
    env: dict[str, str]
    built: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    server: Server | None = None


def size_prepare(args: argparse.Namespace, world: World, keys: dict[str, str], workdir: Path, port: int) -> Size:
    url = _size_url(args.database_url, world.events)
    size = Size(world=world, url=url, env=server_env(url, keys))
    size.built = world_fill(url, world, size.env)
    size.targets = polled_targets(url)
    feeds = sorted(t.feed_length for t in size.targets)
    histories = sorted(t.history_length for t in size.targets)
    size.built["polled"] = {
        "identities": len(size.targets),
        "tokens": len({t.token for t in size.targets}),
        "triggers": sorted({t.slug for t in size.targets}),
        "feed_length_min": feeds[0],
        "feed_length_median": statistics.median(feeds),
        "feed_length_max": feeds[-1],
        "user_history_median": statistics.median(histories),
    }
    say(
        f"  polling {len(size.targets)} identities of {size.built['polled']['tokens']} users: feeds of "
        f"{feeds[0]:,}–{feeds[-1]:,} items, each user's history {histories[0]:,}–{histories[-1]:,} events"
    )
    size.server = Server(size.env, port, args.workers, workdir / f"gunicorn-{world.events}.log")
    load = Load(base_url=size.server.base_url, connections=args.connections, workdir=workdir)
    size.files = {
        endpoint: load.prepare(f"{endpoint}-{world.events}", path, size.targets) for endpoint, path in ENDPOINTS.items()
    }
    return size


def _size_url(url: str, events: int) -> str:
    """Each size has its own database, `<name>_<events>`, so all sizes are measured in the same rounds."""
    parts = urlsplit(url)
    return parts._replace(path=f"{parts.path}_{events}").geturl()


def one_sample(load: Load, size: Size, endpoint: str, seconds: float) -> Sample:
    assert size.server is not None
    pids = size.server.worker_pids()
    backends = database_backends(database_name(size.url))
    web, db, busy = cpu_by_pid(pids), cpu_by_pid(backends), _machine_busy_seconds()
    raw = load.run(size.files[endpoint], seconds)
    web_cpu, _ = cpu_used(web, cpu_by_pid(pids))
    db_cpu, closed = cpu_used(db, cpu_by_pid(database_backends(database_name(size.url))))
    other = (_machine_busy_seconds() - busy - web_cpu - db_cpu) / raw["seconds"]
    per_request = 1000 / max(raw["requests"], 1)
    sample = Sample(
        events=size.world.events,
        endpoint=endpoint,
        requests=raw["requests"],
        seconds=round(raw["seconds"], 2),
        p50_ms=round(raw["p50_ms"], 2),
        p99_ms=round(raw["p99_ms"], 2),
        rps=round(raw["requests"] / raw["seconds"], 1),
        errors=raw["errors"],
        web_cpu_ms=round(web_cpu * per_request, 3),
        db_cpu_ms=round(db_cpu * per_request, 3),
        cpu_ms=round((web_cpu + db_cpu) * per_request, 3),
        db_backends_closed=closed,
        other_cores_busy=round(max(other, 0.0), 2),
    )
    if sample.errors:
        raise SystemExit(
            f"{endpoint} at {size.world.events:,}: {sample.errors} failed requests; see {size.server.log}."
        )
    return sample


def rounds_run(args: argparse.Namespace, sizes: list[Size], load_for: dict[int, Load]) -> list[Sample]:
    """`args.rounds` rounds; each measures every endpoint at every size, in an order rotated per round
    so none always runs first (on a fresher machine) or right after another particular one."""
    samples: list[Sample] = []
    pairs = [(size, endpoint) for size in sizes for endpoint in ENDPOINTS]
    for round_number in range(1, args.rounds + 1):
        shift = (round_number - 1) % len(pairs)
        order = pairs[shift:] + pairs[:shift]
        if round_number % 2 == 0:
            order.reverse()
        figures = []
        for size, endpoint in order:
            sample = one_sample(load_for[size.world.events], size, endpoint, args.duration)
            sample.round = round_number
            samples.append(sample)
            figures.append(f"{endpoint}@{size.world.events:,} {sample.p50_ms:.1f} ms {sample.cpu_ms:.2f} cpu")
        say(f"  round {round_number}/{args.rounds}: " + "; ".join(sorted(figures)))
    return samples


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def summarise(samples: list[Sample], sizes: list[Size]) -> dict[str, Any]:
    """Per size and endpoint: median (min–max) over rounds; and the ratios, taken within each round."""
    summary: dict[str, Any] = {"by_size": {}, "ratios": {}}
    keys = ("p50_ms", "p99_ms", "rps", "web_cpu_ms", "db_cpu_ms", "cpu_ms", "other_cores_busy")
    rounds = sorted({s.round for s in samples})
    at = {(s.round, s.events, s.endpoint): s for s in samples}
    for size in sizes:
        n = size.world.events
        summary["by_size"][n] = {
            endpoint: {key: spread([getattr(s, key) for s in samples if s.events == n and s.endpoint == endpoint])
                       for key in keys}
            for endpoint in ENDPOINTS
        }  # fmt: skip
        for name, top, bottom, key in (
            ("poll_cpu_over_floor", "poll", "floor", "cpu_ms"),
            ("poll_cpu_over_floor1", "poll", "floor1", "cpu_ms"),
            ("poll_cpu_over_bare", "poll", "bare", "cpu_ms"),
            ("poll_rps_over_bare", "poll", "bare", "rps"),
            ("poll_p50_over_floor", "poll", "floor", "p50_ms"),
        ):
            values = [getattr(at[r, n, top], key) / max(getattr(at[r, n, bottom], key), 1e-9) for r in rounds]
            summary["ratios"][f"{name}@{n}"] = spread(values)
    if len(sizes) >= 2:
        small, large = sizes[0].world.events, sizes[-1].world.events
        for endpoint in ("poll", "floor"):
            values = [at[r, large, endpoint].p50_ms / at[r, small, endpoint].p50_ms for r in rounds]
            summary["ratios"][f"{endpoint}_p50_growth"] = spread(values)
    return summary


# -- where the time goes ---------------------------------------------------------------------------

_SQL_TABLE = re.compile(r'^(?:(SELECT|DELETE)\b.*?\bFROM|(INSERT) INTO|(UPDATE))\s+"?(\w+)', re.S)


def _query_label(sql: str) -> str:
    """`SELECT devices_device`, `UPDATE triggers_triggeridentity`, …; other statements by their first words."""
    if sql.lstrip().startswith(("WITH token AS", "EXECUTE trigger_poll")):
        return "the poll's statement (token, identity, feed)"
    match = _SQL_TABLE.match(sql.lstrip())
    if match is None:
        return " ".join(sql.split()[:3])
    verb = next(group for group in match.groups()[:3] if group)
    return f"{verb} {match.group(4)}"


def breakdown(env: dict[str, str], targets: list[Target], requests: int) -> dict[str, Any]:
    """Serve `requests` polls and bare calls in this process, timing every SQL query they make.

    What is left after the queries is Python: middleware, authentication, the view, rendering.
    One process, one request at a time, so these are costs, not latencies under load.
    """
    for key in (
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "DJANGO_DEBUG",
        "DJANGO_SECRET_KEY",
        "IFTTT_SERVICE_KEY",
        "IFTTT_CLIENT_SECRET",
        "DJANGO_ALLOWED_HOSTS",
        "IFTTT_REALTIME_URL",
        "LOG_LEVEL",
    ):
        os.environ[key] = env[key]
    import django

    django.setup()
    from django.db import connection, connections
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    result: dict[str, Any] = {}
    feed_reads: list[tuple[str, Any]] = []
    paths = {"bare": "/ifttt/v1/_bench/bare", "poll": "/ifttt/v1/triggers/{slug}", "floor": ENDPOINTS["floor"]}
    queries: dict[str, dict[str, list[float]]] = {endpoint: {} for endpoint in paths}
    spent = {endpoint: [0.0, 0.0] for endpoint in paths}  # wall, CPU
    current = ["bare"]

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries[current[0]].setdefault(_query_label(sql), []).append(time.perf_counter() - started)
            if sql.startswith("EXECUTE trigger_poll") or (
                "triggers_triggerfeeditem" in sql and sql.lstrip().startswith(("SELECT", "WITH"))
            ):
                feed_reads.append((sql, params))

    from bench.floor import application as with_floor

    def floor(target: Target) -> None:
        body = target.body().encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": ENDPOINTS["floor"].format(slug=target.slug),
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "HTTP_AUTHORIZATION": f"Bearer {target.token}",
        }  # fmt: skip
        status = []
        with_floor(environ, lambda line, headers: status.append(line))
        if not status[0].startswith("200"):
            raise SystemExit(f"The floor answered {status[0]} in process.")

    def serve(endpoint: str, first: int, count: int) -> None:
        for n in range(first, first + count):
            target = targets[n % len(targets)]
            if endpoint == "floor":
                floor(target)
                continue
            response = client.post(
                paths[endpoint].format(slug=target.slug), data=target.body(), content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {target.token}",
            )  # fmt: skip
            if response.status_code != 200:
                raise SystemExit(f"{endpoint} answered {response.status_code} in process: {response.content[:300]!r}")

    for endpoint in paths:
        serve(endpoint, 0, min(100, requests))
    # Alternate in small chunks, so both endpoints see the same machine (others may be busy on it).
    chunk = 25
    with connection.execute_wrapper(timed):
        for first in range(0, requests, chunk):
            for endpoint in paths:
                current[0] = endpoint
                cpu, wall = time.process_time(), time.perf_counter()
                serve(endpoint, first, min(chunk, requests - first))
                spent[endpoint][0] += time.perf_counter() - wall
                spent[endpoint][1] += time.process_time() - cpu
    for endpoint in paths:
        wall, cpu = spent[endpoint]
        in_queries = sum(sum(times) for times in queries[endpoint].values())
        result[endpoint] = {
            "ms_per_request": round(1000 * wall / requests, 2),
            "process_cpu_ms": round(1000 * cpu / requests, 2),
            "sql_ms": round(1000 * in_queries / requests, 2),
            "python_ms": round(1000 * (wall - in_queries) / requests, 2),
            "queries": {
                label: {"per_request": round(len(times) / requests, 2), "ms": round(1000 * sum(times) / requests, 3)}
                for label, times in sorted(queries[endpoint].items(), key=lambda item: -sum(item[1]))
            },
        }
    result["feed_rows_read"] = _feed_rows_read(connection, feed_reads[: len(targets)])
    result["authentication"] = authentication_compare(targets, requests)
    connections.close_all()
    return result


def authentication_compare(targets: list[Target], requests: int) -> dict[str, float]:
    """Authentication alone, ms per request: ours (protocol.auth) against django-oauth-toolkit's DRF
    class, on the same requests, alternating in chunks. Why the service keeps its own class."""
    from django.test import RequestFactory
    from oauth2_provider.contrib.rest_framework import OAuth2Authentication
    from rest_framework.request import Request

    from core.http import JSONParser
    from protocol.auth import BearerTokenAuthentication

    factory = RequestFactory()
    classes = {"ours": BearerTokenAuthentication(), "django-oauth-toolkit": OAuth2Authentication()}
    spent = dict.fromkeys(classes, 0.0)
    chunk = 25
    for first in range(0, requests, chunk):
        for name, authenticator in classes.items():
            started = time.process_time()
            for n in range(first, min(first + chunk, requests)):
                target = targets[n % len(targets)]
                wsgi = factory.post("/", target.body(), "application/json", HTTP_AUTHORIZATION=f"Bearer {target.token}")
                request = Request(wsgi, parsers=[JSONParser()])
                if authenticator.authenticate(request) is None:
                    raise SystemExit(f"{name} refused a live token.")
            spent[name] += time.process_time() - started
    return {name: round(1000 * seconds / requests, 3) for name, seconds in spent.items()}


def _feed_rows_read(connection: Any, reads: list[tuple[str, Any]]) -> dict[str, Any]:
    """How many feed rows each poll's query really read, from PostgreSQL's own plan (EXPLAIN ANALYZE).

    O(limit) means at most `limit` rows from the feed whatever its length; a plan that reads the
    whole feed and sorts it shows up here however busy the machine is. For comparison, the same read
    written as one query joining the feed to its events (the form the selector used to have).
    """
    from triggers.models import TriggerFeedItem, TriggerIdentity

    joined = []
    for pk in TriggerIdentity.objects.filter(user_id__lte=HOT_USERS, deleted_at__isnull=True).values_list("pk"):
        query = (
            TriggerFeedItem.objects.filter(identity_id=pk[0])
            .select_related("event__device")
            .order_by("-occurred_at", "-event_id")[:POLL_LIMIT]
        )
        sql, params = query.query.sql_with_params()
        joined.append((sql, params))
    figures = {}
    for name, queries in (("poll", reads), ("one_joined_query", joined)):
        counts = []
        with connection.cursor() as cursor:
            for sql, params in queries:
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                nodes, read = [cursor.fetchone()[0][0]["Plan"]], 0
                while nodes:
                    node = nodes.pop()
                    nodes.extend(node.get("Plans", []))
                    if node.get("Relation Name") == "triggers_triggerfeeditem":
                        read = max(read, node["Actual Rows"] * node.get("Actual Loops", 1))
                counts.append(read)
        if counts:
            figures[name] = {
                "queries": len(counts),
                "median": statistics.median(counts),
                "max": max(counts),
                "over_limit": sum(count > POLL_LIMIT for count in counts),
            }
    return figures


# -- report ----------------------------------------------------------------------------------------


def _cell(figure: dict[str, float], digits: int = 2) -> str:
    return f"{figure['median']:,.{digits}f} ({figure['min']:,.{digits}f}–{figure['max']:,.{digits}f})"


def markdown(result: dict[str, Any]) -> str:
    meta = result["run"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} cores), PostgreSQL {meta['postgresql']}, "
        f"gunicorn {meta['workers']} sync workers per size, {meta['connections']} concurrent clients "
        f"({meta['client']}), {meta['rounds']} interleaved rounds of {meta['duration']:g} s per endpoint and size; "
        f"median (min–max) over rounds; IFTTT_API_LOG_ENABLED={meta['api_log']}; load average "
        f"{meta['load_before']} before, {meta['load_after']} after.",
        "",
        "| events | endpoint | p50 ms | p99 ms | req/s | CPU ms/req (web + DB) | web | DB | other cores busy |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary = result["summary"]
    for events, endpoints in summary["by_size"].items():
        for endpoint, m in endpoints.items():
            lines.append(
                f"| {int(events):,} | {endpoint} | {_cell(m['p50_ms'], 1)} | {_cell(m['p99_ms'], 1)} | "
                f"{_cell(m['rps'], 0)} | {_cell(m['cpu_ms'])} | {m['web_cpu_ms']['median']:.2f} | "
                f"{m['db_cpu_ms']['median']:.2f} | {m['other_cores_busy']['median']:.2f} |"
            )
    lines += ["", "| ratio, within each round | median (min–max) |", "|---|---:|"]
    for name, figure in summary["ratios"].items():
        lines.append(f"| {name} | {_cell(figure)} |")
    parts = result.get("breakdown")
    if parts:
        lines += [
            "",
            f"Where the time goes at {result['sizes'][-1]['events']:,} events (one process, one request at a "
            "time, ms per request):",
            "",
            "| | floor | bare | poll |",
            "|---|---:|---:|---:|",
        ]
        for key, label in (
            ("ms_per_request", "total"),
            ("process_cpu_ms", "CPU of this process"),
            ("python_ms", "Python (all but SQL)"),
            ("sql_ms", "SQL"),
        ):
            lines.append(f"| {label} | " + " | ".join(f"{parts[e][key]:.2f}" for e in ("floor", "bare", "poll")) + " |")
        labels = list(dict.fromkeys([*parts["poll"]["queries"], *parts["bare"]["queries"]]))
        for label in labels:
            cells = []
            for endpoint in ("bare", "poll"):
                query = parts[endpoint]["queries"].get(label)
                cells.append(f"{query['ms']:.2f} ({query['per_request']:g}×)" if query else "–")
            lines.append(f"| &nbsp;&nbsp;{label} | – | {cells[0]} | {cells[1]} |")
        auth = parts.get("authentication", {})
        if auth:
            lines += ["", "Bearer authentication alone, CPU ms per request: "
                      + ", ".join(f"{name} {ms:.3f}" for name, ms in auth.items()) + "."]  # fmt: skip
        for name, label in (("poll", "a poll"), ("one_joined_query", "the same read as one joined query")):
            read = parts.get("feed_rows_read", {}).get(name)
            if read:
                lines.append(
                    f"- Feed rows read by {label} (EXPLAIN ANALYZE, {read['queries']} identities): median "
                    f"{read['median']:g}, max {read['max']:,}, {read['over_limit']} read more than {POLL_LIMIT}."
                )
    lines.append("")
    for check in result["targets"]:
        lines.append(f"- {check['name']}: {check['value']:,.2f} (target {check['target']}) — {check['verdict']}")
    return "\n".join(lines) + "\n"


def targets_check(result: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    read = result.get("breakdown", {}).get("feed_rows_read", {}).get("poll")
    if read:
        checks.append(
            {
                "name": f"most feed rows one poll read at {result['sizes'][-1]['events']:,} events",
                "value": read["max"],
                "target": f"≤ {POLL_LIMIT}",
                "verdict": "met" if read["max"] <= POLL_LIMIT else "MISSED",
            }
        )
    ratios = result["summary"]["ratios"]
    for name, figure in ratios.items():
        if name.startswith("poll_cpu_over_floor@"):
            value = figure["median"]
            checks.append(
                {
                    "name": f"poll CPU per request ÷ the floor's at {int(name.split('@')[1]):,} events",
                    "value": value,
                    "target": f"≤ {TARGET_CPU_OVER_FLOOR}",
                    "verdict": "met" if value <= TARGET_CPU_OVER_FLOOR else "MISSED",
                }
            )
    growth = ratios.get("poll_p50_growth")
    if growth:
        checks.append(
            {
                "name": "poll p50 at the largest size ÷ at the smallest (median of rounds)",
                "value": growth["median"],
                "target": f"≤ {TARGET_P50_GROWTH}",
                "verdict": "met" if growth["median"] <= TARGET_P50_GROWTH else "MISSED",
            }
        )
    return checks


def machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return sys.platform


def postgres_version(url: str) -> str:
    connection = psycopg2.connect(maintenance_url(url))
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = str(cursor.fetchone()[0])
    connection.close()
    return version


def _load_average() -> str:
    return " ".join(f"{n:.1f}" for n in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL database name to start from: each size gets <name>_<events>, dropped and "
        "recreated (default: %(default)s)",
    )
    parser.add_argument("--sizes", default="10000,1000000", help="event counts, smallest first (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("BENCH_PORT", 8550)),
        help="first TCP port to try for gunicorn (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=6, help="seconds per measurement (default: %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds, each measuring everything (default: %(default)s)"
    )
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per endpoint and size")
    parser.add_argument(
        "--breakdown",
        type=int,
        default=500,
        help="requests served in process to time each query (0: skip; default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the databases in place afterwards")
    args = parser.parse_args()  # fmt: skip
    # Stopped from outside, still stop the servers it started (the ExitStack's exit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    except ValueError:
        message = f"--sizes must be whole numbers with commas between, such as 10000,1000000: {args.sizes!r}"
        raise SystemExit(message) from None
    if not database_name(args.database_url).startswith("bench"):
        raise SystemExit("--database-url must name a database starting with 'bench': this script drops it.")
    worlds = [World.sized(n) for n in sizes]
    keys = {name: secrets.token_urlsafe(40) for name in ("secret", "service", "client")}
    load_client = "wrk (1 thread, Lua script)" if shutil.which("wrk") else "Python threads (wrk not installed)"
    if not shutil.which("wrk"):
        say("wrk is not installed (apt-get install wrk): falling back to a Python client, which shares the")
        say("CPU with the server, so throughput and latency will look worse than they are.")
    result: dict[str, Any] = {
        "run": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "cpus": os.cpu_count(),
            "postgresql": postgres_version(args.database_url),
            "workers": args.workers,
            "connections": args.connections,
            "client": load_client,
            "duration": args.duration,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "limit": POLL_LIMIT,
            "api_log": os.environ.get("IFTTT_API_LOG_ENABLED", "1 (default)"),
        },
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp, contextlib.ExitStack() as servers:
        prepared: list[Size] = []
        port = args.port
        for number, world in enumerate(worlds, 1):
            say(f"[{number}/{len(worlds)}] {world.events:,} events")
            port = free_port(port, port + 49)
            prepared.append(size_prepare(args, world, keys, Path(tmp), port))
            port += 1
        loads = {}
        for size in prepared:
            assert size.server is not None
            servers.enter_context(size.server)
            loads[size.world.events] = Load(base_url=size.server.base_url, connections=args.connections,
                                            workdir=Path(tmp))  # fmt: skip
            say(f"  {size.world.events:,}: gunicorn, {args.workers} workers on {size.server.base_url}")
        since = datetime.now(UTC)
        before = {size.world.events: database_counts(size.url, since) for size in prepared}
        for size in prepared:
            check_responses(size.server.base_url if size.server else "", size.targets)
        say(f"  every endpoint answers the same 50 items; warming up ({args.warmup:g} s each) …")
        for size in prepared:
            for endpoint in ENDPOINTS:
                loads[size.world.events].run(size.files[endpoint], args.warmup)
        result["run"]["load_before"] = _load_average()
        samples = rounds_run(args, prepared, loads)
        result["run"]["load_after"] = _load_average()
        for size in prepared:
            after = database_counts(size.url, since)
            was = before[size.world.events]
            if after["identities"] != was["identities"] or after["feed_items"] != was["feed_items"]:
                raise SystemExit(f"Polling changed the identities or feeds ({was} → {after}): polls rebuild feeds.")
            if after["recently_polled"] < len(size.targets):
                raise SystemExit(
                    f"Only {after['recently_polled']} of {len(size.targets)} identities were marked polled."
                )
    result["sizes"] = [{"events": size.world.events, "world": size.built} for size in prepared]
    result["summary"] = summarise(samples, prepared)
    result["samples"] = [asdict(s) for s in samples]
    if args.breakdown:
        say(f"  where the time goes: {args.breakdown} polls, bare calls and floors in one process …")
        largest = prepared[-1]
        result["breakdown"] = breakdown(largest.env, largest.targets, args.breakdown)
    if not args.keep:
        admin = psycopg2.connect(maintenance_url(args.database_url))
        admin.autocommit = True
        with admin.cursor() as cursor:
            for size in prepared:
                cursor.execute(f'DROP DATABASE IF EXISTS "{database_name(size.url)}" WITH (FORCE)')
        admin.close()
    result["targets"] = targets_check(result)
    report = markdown(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"poll-{stamp}", "poll-latest"):
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        (RESULTS_DIR / f"{name}.md").write_text(report)
    say("")
    say(report)
    say(f"Done in {time.perf_counter() - started:.0f} s. Results: bench/results/poll-{stamp}.json and .md")
    if any(check["verdict"] != "met" for check in result["targets"]):
        say("A target was missed: see docs/performance.md (Trigger polling) for how to profile a poll.")
        sys.exit(1)


if __name__ == "__main__":
    main()
