#!/usr/bin/env python
"""Realtime notifications through faults: nothing lost, nothing doubled, and how long recovery takes.

Each round runs every scenario below (interleaved, so all see the same machine) with fresh parts: a
private `redis-server` as the broker, one `celery worker` (pool of 2, with the beat schedule) reaching
PostgreSQL through a relay that can drop every connection, and a local stand-in for IFTTT's Realtime
API. For 3 s, events are recorded for 8 homes (3 trigger identities each) at about 30 a second; the
fault strikes 1 s in. Then it waits until nothing is pending and no delivery is open.

    none           the baseline (the floor for the recovery time)
    ifttt-500-30s  IFTTT's Realtime API answers 500 for "30 s"   (emulated time, see below)
    ifttt-500-10m  … and for "10 minutes"
    broker         the Redis broker stopped for 2 s and started again, empty
    worker-kill    the worker SIGKILLed; a new one started
    postgres       every database connection dropped and refused for 1.5 s (a restart)

Emulated time: the retry policy's base and cap are settings; this script scales them and the IFTTT
outages by 1/100 (2 s → 20 ms base, 60 s → 0.6 s cap; "10 minutes" → 6 s), which keeps the number and
proportions of attempts of the production policy. Recovery times of the IFTTT scenarios are therefore
in emulated units: multiply by 100 for the real-time equivalent.

Per scenario: events stored ÷ sent, identities notified after their last event ÷ expected, doubled
notifications (an X-Request-ID answered 2xx twice), resends counted by the service (`resends`: an
attempt whose answer was never recorded), requests IFTTT received, and the time from the end of the
fault (or of the load, if later) to everything settled: median (min–max) over rounds. A notification
sent twice is expected only where a worker died between sending and recording it, and then counted.

    .venv/bin/python bench/faults.py                # 3 rounds, about 5 minutes
    .venv/bin/python bench/faults.py --rounds 1

Needs PostgreSQL (DATABASE_URL, default a `bench_faults` database on localhost, recreated) and
`redis-server` on the PATH. Results go to bench/results/faults.json; a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/<name>.py`
from bench.common import django_start, say  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_faults"
TIME_SCALE = 0.01
SCENARIOS = ("none", "ifttt-500-30s", "ifttt-500-10m", "broker", "worker-kill", "postgres")
HOMES, IDENTITIES, LOAD_SECONDS, FAULT_AT = 8, 3, 3.0, 1.0


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from conftest import port_open

        command = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen([*command, "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def homes_create(tag: str) -> list[tuple[Any, list[str]]]:
    from triggers.tests.test_realtime_worker import _home

    return [_home(f"{tag}-{n}", IDENTITIES) for n in range(HOMES)]


def run_scenario(name: str, tmp: Path) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection, transaction

    from devices.models import DeviceEvent, EventSource, EventType
    from devices.services import NewEvent, device_events_record
    from triggers.models import DeliveryStatus, RealtimeDelivery, TriggerIdentity
    from triggers.tests.pgproxy import PostgresRelay
    from triggers.tests.standin import StandIn
    from triggers.tests.test_realtime_worker import Workers, _use_broker

    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    homes = homes_create(tag)
    redis, server, relay = Redis(), StandIn().start(), PostgresRelay("127.0.0.1", 5432)
    redis.start()
    db = connection.settings_dict
    relay.upstream = (db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    queue = f"faults-{tag}"
    _use_broker(settings, redis.url, queue, server.url)
    settings.CELERY_REALTIME_QUEUE = f"{queue}.realtime"
    scaled = {"REALTIME_BACKOFF_SECONDS": 2.0 * TIME_SCALE, "REALTIME_RETRY_CAP_SECONDS": 60.0 * TIME_SCALE}
    for key, value in scaled.items():
        setattr(settings, key, value)
    workers = Workers(tmp, redis.url, queue, server.url)
    workers.env.update({key: str(value) for key, value in scaled.items()})
    workers.env["DATABASE_URL"] = f"postgres://{db['USER']}@127.0.0.1:{relay.port}/{db['NAME']}"
    workers.env["DATABASE_CONN_MAX_AGE"] = "60"
    first = workers.start(f"w-{tag}", concurrency=2)

    fault_over = 0.0

    def strike() -> Callable[[], Any] | None:
        """Start the fault; return what ends it, if it does not end by itself."""
        nonlocal fault_over
        if name.startswith("ifttt-500"):
            outage = (30.0 if name.endswith("30s") else 600.0) * TIME_SCALE
            server.outage(outage)
            fault_over = time.monotonic() + outage
        elif name == "broker":
            redis.stop()
            return redis.start
        elif name == "worker-kill":
            workers.kill(first)
            return lambda: workers.start(f"w2-{tag}", concurrency=2)  # as a supervisor would, after the load
        elif name == "postgres":
            relay.restart(1.5)
            fault_over = time.monotonic() + 1.5
        return None

    sent, at, last_sent = 0, 0, {}
    end_fault: Callable[[], Any] | None = None
    struck = False
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < LOAD_SECONDS:
        if not struck and elapsed >= FAULT_AT:
            end_fault, struck = strike(), True
        if end_fault is not None and name == "broker" and elapsed >= FAULT_AT + 2.0:
            end_fault()
            end_fault, fault_over = None, time.monotonic()
        lamp, _ = homes[at % HOMES]
        last_sent[at % HOMES] = time.time()
        with transaction.atomic():
            device_events_record(device=lamp, events=[NewEvent(type=EventType.SWITCHED_ON)], source=EventSource.DEVICE)
        sent, at = sent + 1, at + 1
        time.sleep(1 / 30)
    if end_fault is not None:
        end_fault()
        fault_over = time.monotonic()
    load_end = max(time.monotonic(), fault_over)
    names = {n for _, ns in homes for n in ns}

    def settled() -> bool:
        identities = TriggerIdentity.objects.filter(identity__in=names)
        open_ = RealtimeDelivery.objects.filter(
            status__in=(DeliveryStatus.SENDING, DeliveryStatus.RETRYING), trigger_identities__identity__in=names
        )
        return not identities.filter(notify_pending_since__isnull=False).exists() and not open_.exists()

    deadline = time.monotonic() + 120
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.05)
    recovery = time.monotonic() - load_end
    time.sleep(1.0)  # anything doubled arrives by now
    delivered = server.delivered()
    notified = sum(
        1
        for home, (_, ns) in enumerate(homes)
        for n in ns
        if any(n in r.identities and r.at > last_sent[home] for r in delivered)
    )
    ids = [r.request_id for r in delivered]
    deliveries = RealtimeDelivery.objects.filter(trigger_identities__identity__in=names).distinct()
    result = {
        "scenario": name,
        "events_sent": sent,
        "events_stored": DeviceEvent.objects.filter(device__in=[lamp for lamp, _ in homes], type="switched_on").count(),
        "identities_expected": len(names),
        "identities_notified": notified,
        "doubled": len(ids) - len(set(ids)),
        "resends": sum(deliveries.values_list("resends", flat=True)),
        "not_delivered": deliveries.exclude(status=DeliveryStatus.DELIVERED).count(),
        "requests": len(server.received),
        "failed_requests": sum(1 for r in server.received if r.status >= 500),
        "recovery_seconds": recovery,
    }
    workers.stop_all()
    server.stop()
    relay.close()
    redis.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not on the PATH (apt-get install redis-server)")
    django_start(args.database_url, DJANGO_DEBUG="1", IFTTT_SERVICE_KEY="bench-service-key", LOG_LEVEL="WARNING")
    from django.conf import settings

    settings.IFTTT_SERVICE_KEY = "bench-service-key"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    scenarios = args.scenarios.split(",")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):
            for name in scenarios:
                result = run_scenario(name, Path(tmp))
                result["round"] = round_
                runs.append(result)
                say(
                    f"round {round_} {name:14} notified {result['identities_notified']}/{result['identities_expected']}"
                    f" stored {result['events_stored']}/{result['events_sent']} doubled {result['doubled']}"
                    f" resends {result['resends']} requests {result['requests']} ({result['failed_requests']} 5xx)"
                    f" recovery {result['recovery_seconds']:.2f} s"
                )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "faults.json").write_text(json.dumps(runs, indent=2))
    say()
    say(
        "| scenario | events stored ÷ sent | identities notified ÷ expected | doubled | resends | requests (5xx) "
        "| fault over → settled, median (min–max) |"
    )
    say("|---|---|---|---|---|---|---|")
    failed = False
    for name in scenarios:
        mine = [r for r in runs if r["scenario"] == name]
        times = [r["recovery_seconds"] for r in mine]
        stored = sum(r["events_stored"] for r in mine), sum(r["events_sent"] for r in mine)
        notified = sum(r["identities_notified"] for r in mine), sum(r["identities_expected"] for r in mine)
        doubled, resends = sum(r["doubled"] for r in mine), sum(r["resends"] for r in mine)
        requests, errors = sum(r["requests"] for r in mine), sum(r["failed_requests"] for r in mine)
        failed |= stored[0] != stored[1] or notified[0] != notified[1] or doubled > resends
        say(
            f"| {name} | {stored[0]} ÷ {stored[1]} | {notified[0]} ÷ {notified[1]} | {doubled} | {resends} | "
            f"{requests} ({errors}) | {statistics.median(times):.2f} s ({min(times):.2f}–{max(times):.2f}) |"
        )
    if failed:
        raise SystemExit("Something was lost or doubled: see the table.")


if __name__ == "__main__":
    main()
