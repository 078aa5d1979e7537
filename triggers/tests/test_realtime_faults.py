"""Faults under load, with real parts: PostgreSQL, a Redis broker, `celery worker` processes, device
events sent through the device API, and a local stand-in for IFTTT's Realtime API.

Each fault must end with every event stored, every identity it concerns notified after its last event,
and no notification doubled (no X-Request-ID answered 2xx twice). Nothing here asserts timing.

Emulated time: the retry policy's base and cap are settings, and the outage tests scale them (and the
outage) by TIME_SCALE, so "IFTTT answers 500 for 10 minutes" plays out in a few seconds with the
production policy's shape: the same number of attempts, in the same proportions.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from conftest import port_open
from devices.models import DeviceEvent, EventType
from devices.services import device_api_key_issue
from triggers.models import AttemptOutcome, DeliveryStatus, RealtimeAttempt, RealtimeDelivery, TriggerIdentity

from . import test_realtime_worker as rig
from .pgproxy import PostgresRelay
from .standin import Reply, StandIn
from .test_realtime_worker import Workers, _home, _switch_on, _wait

realtime_rig = rig.realtime_rig  # the same fixture: a stand-in, a Redis queue of its own, workers

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Production: REALTIME_BACKOFF_SECONDS=2, REALTIME_RETRY_CAP_SECONDS=60.
TIME_SCALE = 0.01
PRODUCTION_BACKOFF, PRODUCTION_CAP = 2.0, 60.0


class Load:
    """Switches lamps on through the device API, round-robin over homes, remembering when each home's
    last report was sent (before the request: its notification must arrive after that)."""

    def __init__(self, client: Client, homes: list[tuple[Any, list[str]]]) -> None:
        self.client = client
        self.homes = [(device_api_key_issue(device=lamp), names) for lamp, names in homes]
        self.cycle = itertools.cycle(range(len(self.homes)))
        self.sent = 0
        self.last_sent: dict[int, float] = {}
        self.statuses: list[int] = []

    def one(self) -> None:
        home = next(self.cycle)
        key, _ = self.homes[home]
        self.last_sent[home] = time.time()
        self.statuses.append(_switch_on(self.client, key, f"load-{self.sent}").status_code)
        self.sent += 1

    def run_for(self, seconds: float, pause: float = 0.03) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.one()
            time.sleep(pause)

    def expected(self) -> dict[str, float]:
        """Identity → the time after which a notification for it must have arrived."""
        return {name: self.last_sent[home] for home, (_, names) in enumerate(self.homes) for name in names}


def _settled() -> bool:
    open_ = RealtimeDelivery.objects.filter(status__in=(DeliveryStatus.SENDING, DeliveryStatus.RETRYING))
    pending = TriggerIdentity.objects.filter(notify_pending_since__isnull=False)
    return not open_.exists() and not pending.exists()


def _assert_nothing_lost_nothing_doubled(server: StandIn, load: Load, workers: Workers) -> None:
    assert set(load.statuses) == {202}
    assert DeviceEvent.objects.filter(type=EventType.SWITCHED_ON).count() == load.sent
    _wait(_settled, 90, "every pending identity notified", workers)
    time.sleep(1.0)  # anything doubled would arrive by now
    delivered = server.delivered()
    for identity, after in load.expected().items():
        assert any(identity in r.identities and r.at > after for r in delivered), f"{identity} not notified"
    ids = [r.request_id for r in delivered]
    assert len(ids) == len(set(ids)), "a notification was delivered twice"
    assert not RealtimeDelivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()


@pytest.mark.parametrize("outage", [30.0, 600.0], ids=["30s", "10min"])
def test_realtime_answering_500_for_a_while_ends_with_every_identity_notified_once(
    realtime_rig: Any, client: Client, settings: Any, outage: float
) -> None:
    server, workers = realtime_rig()
    scaled = {
        "REALTIME_BACKOFF_SECONDS": PRODUCTION_BACKOFF * TIME_SCALE,
        "REALTIME_RETRY_CAP_SECONDS": PRODUCTION_CAP * TIME_SCALE,
    }
    for name, value in scaled.items():
        workers.env[name] = str(value)
        setattr(settings, name, value)
    workers.start("w1", concurrency=2)
    load = Load(client, [_home(f"out{n}", 3) for n in range(4)])

    load.run_for(0.5)
    server.outage(outage * TIME_SCALE)
    load.run_for(outage * TIME_SCALE + 0.5)

    _assert_nothing_lost_nothing_doubled(server, load, workers)
    assert any(r.status == 500 for r in server.received)
    # While IFTTT failed, new events waited on their identities: few deliveries were ever retried.
    retried = RealtimeDelivery.objects.filter(attempts__gt=1).count()
    assert retried <= 2, retried
    assert RealtimeAttempt.objects.filter(outcome=AttemptOutcome.RETRY).exists()


def test_a_postgresql_restart_loses_nothing_and_sends_nothing_twice(
    realtime_rig: Any, client: Client, settings: Any
) -> None:
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)
    assert port_open(host, port)
    relay = PostgresRelay(host, port)
    try:
        # The stand-in holds the first notification, so the restart comes between IFTTT's answer and
        # its being recorded: the write must ride the restart out, not leave the delivery to be resent.
        server, workers = realtime_rig([Reply(200, hold_seconds=1.5)])
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        workers.env["DATABASE_URL"] = f"postgres://{auth}@127.0.0.1:{relay.port}/{db['NAME']}"
        workers.env["DATABASE_CONN_MAX_AGE"] = "60"  # persistent connections, as deployed
        workers.start("w1", concurrency=2)
        load = Load(client, [_home(f"pg{n}", 3) for n in range(3)])

        load.one()
        assert server.arrived.wait(20), workers.logs()
        relay.restart(1.5)
        load.run_for(2.0)
        relay.restart(1.0)  # and once more while idle: stale persistent connections
        load.run_for(1.5)

        _assert_nothing_lost_nothing_doubled(server, load, workers)
        assert relay.restarts == 2
        assert sum(RealtimeDelivery.objects.values_list("resends", flat=True)) == 0
    finally:
        relay.close()


def test_after_a_postgresql_restart_the_web_serves_every_request(require_postgres: None, tmp_path: Any) -> None:
    """gunicorn with persistent connections (as deployed) through the relay: after a restart, no request
    fails on a stale connection, and during it the answer is 503 with Retry-After, not a 500."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import requests
    from django.conf import settings as django_settings

    from conftest import SERVICE_KEY, free_port

    db = connection.settings_dict
    relay = PostgresRelay(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    port = free_port()
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{auth}@127.0.0.1:{relay.port}/{db['NAME']}",
        "DATABASE_CONN_MAX_AGE": "600",
        "IFTTT_SERVICE_KEY": SERVICE_KEY,
        "IFTTT_REALTIME_URL": "",
        "DJANGO_DEBUG": "1",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    log = tmp_path / "web.log"
    web = subprocess.Popen(
        [gunicorn, "iftttsvc.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/ifttt/v1/status"
    headers = {"IFTTT-Service-Key": SERVICE_KEY}
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert web.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        before = [requests.get(url, headers=headers, timeout=10).status_code for _ in range(20)]
        relay.restart(2.0)
        during = requests.get(url, headers=headers, timeout=10)
        while time.monotonic() < relay.down_until + 0.2:
            time.sleep(0.05)
        after = [requests.get(url, headers=headers, timeout=10).status_code for _ in range(40)]
    finally:
        web.terminate()
        web.wait(timeout=15)
        relay.close()
    assert set(before) == {200}
    assert during.status_code == 503 and during.headers.get("Retry-After"), during.text
    assert set(after) == {200}, (after, log.read_text()[-3000:])
