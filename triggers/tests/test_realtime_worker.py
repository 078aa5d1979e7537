"""Realtime fan-out with real parts: PostgreSQL, a Redis broker, `celery worker` processes and a local
stand-in for IFTTT's Realtime API. Faults: server errors, a broker outage, a killed worker, two workers.

Events are recorded by this process (committed for real), the workers read them from the test
database. Each test uses a queue of its own, so runs sharing a Redis never take each other's tasks.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test import Client

from conftest import SERVICE_KEY, port_open
from devices.models import DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_api_key_issue, device_create, device_events_record
from triggers.models import DeliveryStatus, RealtimeDelivery, TriggerIdentity
from triggers.tasks import realtime_dispatch

from .standin import Reply, StandIn, broker_connections_reset, standin

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]

CELERY = str(Path(sys.executable).with_name("celery"))
# Short timings so faults play out in seconds; the logic is the production logic.
TIMINGS = {
    "REALTIME_COALESCE_SECONDS": "0.2",
    "REALTIME_SWEEP_SECONDS": "1",
    "REALTIME_BACKOFF_SECONDS": "0.2",
    "REALTIME_TIMEOUT_SECONDS": "4",
    "REALTIME_LEASE_SECONDS": "5",
}


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Workers:
    """Starts `celery worker` processes (with the beat schedule, for the sweep) and stops them."""

    def __init__(self, tmp_path: Path, broker: str, queue: str, realtime_url: str) -> None:
        self.tmp_path = tmp_path
        self.queue = queue
        self.env = {
            **os.environ,
            **TIMINGS,
            "DATABASE_URL": _database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "IFTTT_REALTIME_URL": realtime_url,
            "IFTTT_SERVICE_KEY": SERVICE_KEY,
            "DJANGO_DEBUG": "1",
            "LOG_LEVEL": "INFO",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *, beat: bool = True, concurrency: int = 1) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name}.log"
        queues = f"{self.queue},{self.queue}.realtime"
        command = [CELERY, "-A", "iftttsvc", "worker", "-Q", queues, "-n", f"{name}-{self.queue}@%h"]
        command += [f"--concurrency={concurrency}", "--without-gossip", "--without-mingle", "--loglevel=INFO"]
        if beat:
            command += ["--beat", "--schedule", str(self.tmp_path / f"{name}-beat")]
        process = subprocess.Popen(
            command,
            cwd=django_settings.BASE_DIR,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killing it kills its pool children too
        )
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.tmp_path.glob("*.log")))


def _use_broker(settings: Any, broker: str, queue: str, realtime_url: str) -> None:
    """Point this (web) process at the real broker, as a deployed web process would be."""
    settings.CELERY_BROKER_URL = broker
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.CELERY_REALTIME_QUEUE = f"{queue}.realtime"
    settings.IFTTT_REALTIME_URL = realtime_url
    for name, value in TIMINGS.items():
        setattr(settings, name, float(value))
    broker_connections_reset()


@pytest.fixture
def realtime_rig(
    require_postgres: None, require_redis: str, settings: Any, tmp_path: Path
) -> Iterator[Callable[..., tuple[StandIn, Workers]]]:
    """Start a stand-in (with a script of replies) and a Workers handle wired to Redis and this test's DB."""
    opened: list[Any] = []

    def make(script: list[Reply] | None = None, broker: str | None = None) -> tuple[StandIn, Workers]:
        context = standin(script)
        server = context.__enter__()
        opened.append(context)
        queue = f"realtime-test-{uuid.uuid4().hex[:10]}"
        url = broker or require_redis
        _use_broker(settings, url, queue, server.url)
        workers = Workers(tmp_path, url, queue, server.url)
        opened.append(workers)
        return server, workers

    yield make
    for thing in reversed(opened):
        if isinstance(thing, Workers):
            thing.stop_all()
        else:
            thing.__exit__(None, None, None)
    broker_connections_reset()


def _home(username: str, identities: int) -> tuple[Any, list[str]]:
    """A user with a light, and `identities` trigger identities watching it get switched on."""
    from accounts.models import User

    user = User.objects.create_user(username, f"{username}@example.com", "correct-horse-battery")
    lamp = device_create(owner=user, name="Lamp", kind=DeviceKind.LIGHT, room="Den")
    names = [f"{username}-on-{n}" for n in range(identities)]
    TriggerIdentity.objects.bulk_create(
        TriggerIdentity(identity=name, user=user, trigger_slug="device_switched_on", fields={"device": lamp.public_id})
        for name in names
    )
    return lamp, names


def _wait(condition: Callable[[], bool], timeout: float, what: str, workers: Workers) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{workers.logs()}")
        time.sleep(0.05)


def _switch_on(client: Client, key: str, event_id: str) -> Any:
    return client.post(
        "/api/v1/device/events",
        data=json.dumps({"events": [{"type": "switched_off"}, {"type": "switched_on", "event_id": event_id}]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {key}",
    )


def test_device_event_reaches_the_realtime_api_through_a_worker(realtime_rig: Any, client: Client) -> None:
    server, workers = realtime_rig()
    workers.start("w1")
    lamp, names = _home("gina", 3)
    key = device_api_key_issue(device=lamp)

    for n in range(5):  # five reports in quick succession: coalesced
        assert _switch_on(client, key, f"e{n}").status_code == 202

    reported_at = time.time()
    _wait(lambda: any(r.at > reported_at for r in server.delivered()), 20, "the notification", workers)
    time.sleep(1.0)  # anything doubled would arrive by now
    assert set(server.notified()) == set(names)
    assert all(r.service_key == SERVICE_KEY and r.body["data"] for r in server.received)
    assert not TriggerIdentity.objects.filter(notify_pending_since__isnull=False).exists()
    deliveries = list(RealtimeDelivery.objects.order_by("created_at"))
    assert {d.status for d in deliveries} == {DeliveryStatus.DELIVERED}
    # Coalesced: fewer notifications than reports, and never two for one identity within a window.
    assert len(deliveries) < 5
    window = float(TIMINGS["REALTIME_COALESCE_SECONDS"]) - 0.02
    for earlier, later in itertools.pairwise(deliveries):
        assert (later.created_at - earlier.created_at).total_seconds() >= window


def test_two_server_errors_then_success_is_delivered_once(realtime_rig: Any, client: Client) -> None:
    server, workers = realtime_rig([Reply(500), Reply(502)])
    workers.start("w1")
    lamp, names = _home("hana", 2)
    key = device_api_key_issue(device=lamp)

    assert _switch_on(client, key, "e1").status_code == 202

    _wait(lambda: bool(server.delivered()), 30, "the delivery", workers)
    time.sleep(1.0)
    assert [r.status for r in server.received] == [500, 502, 200]
    assert len({r.request_id for r in server.received}) == 1  # one notification, attempted three times
    assert [sorted(r.identities) for r in server.delivered()] == [sorted(names)]
    delivery = RealtimeDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (DeliveryStatus.DELIVERED, 3, 200)


def test_events_stored_while_the_broker_is_down_are_delivered_when_it_is_back(
    realtime_rig: Any, client: Client, tmp_path: Path, caplog: Any
) -> None:
    port = next(p for p in range(8380, 8400) if not port_open("127.0.0.1", p))
    redis_cmd = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    broker = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
    try:
        _wait(lambda: port_open("127.0.0.1", port), 10, "redis-server", Workers(tmp_path, "", "", ""))
        server, workers = realtime_rig(broker=f"redis://127.0.0.1:{port}/0")
        workers.start("w1")
        homes = [_home(f"ivan{n}", 2) for n in range(3)]
        broker.terminate()
        broker.wait(timeout=10)

        keys = [device_api_key_issue(device=lamp) for lamp, _ in homes]
        for n in range(30):  # the service keeps serving, and says the outage once, not once a request
            assert _switch_on(client, keys[n % 3], f"down-{n}").status_code == 202
        assert TriggerIdentity.objects.filter(notify_pending_since__isnull=False).count() == 6
        assert len([r for r in caplog.records if r.exc_info]) <= 1, [r.getMessage() for r in caplog.records]

        broker = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
        expected = {name for _, names in homes for name in names}
        _wait(lambda: server.wait_for(expected, timeout=0), 60, "the sweep after the broker came back", workers)
        time.sleep(1.0)
        assert all(len(ids) == 1 for ids in server.notified().values())
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def test_a_worker_killed_mid_send_loses_nothing_and_doubles_nothing(realtime_rig: Any) -> None:
    # The stand-in holds the first request long enough for us to kill the worker sending it.
    server, workers = realtime_rig([Reply(200, hold_seconds=3)])
    first = workers.start("w1", beat=False)
    lamp, names = _home("jo", 5)

    with transaction.atomic():
        device_events_record(device=lamp, events=[NewEvent(type=EventType.SWITCHED_ON)], source=EventSource.DEVICE)

    assert server.arrived.wait(20), workers.logs()
    workers.kill(first)
    delivery = RealtimeDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SENDING  # it never learnt the answer
    workers.start("w2")  # the sweep takes over once the dead worker's lease lapses

    _wait(lambda: RealtimeDelivery.objects.filter(status=DeliveryStatus.DELIVERED).exists(), 30, "resend", workers)
    time.sleep(1.0)
    assert set(server.notified()) == set(names)
    # The resend is the same notification (same X-Request-ID), not a second one.
    assert {r.request_id for r in server.received} == {delivery.request_id}
    assert RealtimeDelivery.objects.count() == 1
    delivery = RealtimeDelivery.objects.get()
    assert (delivery.attempts, delivery.resends) == (2, 1)  # counted: IFTTT may have seen it twice
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["unanswered", "delivered"]


def test_two_workers_and_duplicate_tasks_notify_each_identity_once(realtime_rig: Any) -> None:
    server, workers = realtime_rig()
    workers.start("w1", concurrency=2)
    workers.start("w2", concurrency=2, beat=False)
    homes = [_home(f"kim{n}", 25) for n in range(12)]
    queue = django_settings.CELERY_REALTIME_QUEUE
    expected = {name for _, names in homes for name in names}

    with transaction.atomic():
        for lamp, _ in homes:
            device_events_record(device=lamp, events=[NewEvent(type=EventType.SWITCHED_ON)], source=EventSource.DEVICE)
        # As if the broker delivered the notification task many times over.
        for _ in range(30):
            transaction.on_commit(lambda: realtime_dispatch.apply_async(kwargs={"min_age": 0.0}, queue=queue))

    _wait(lambda: server.wait_for(expected, timeout=0), 30, "all identities", workers)
    time.sleep(1.5)
    counts = {name: len(ids) for name, ids in server.notified().items()}
    assert counts == dict.fromkeys(expected, 1)
    assert sum(len(r.identities) for r in server.received) == len(expected) == 300
    assert sum(RealtimeDelivery.objects.values_list("identity_count", flat=True)) == 300
