"""Scripts in a real Celery worker: a memory bomb or an endless loop is stopped and the worker carries on;
a long run is never run twice, and a run its task's time limit stops ends as failed, never re-run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection as db_connection

from connections.models import ConnectApiCall, Connection, FiredTrigger, ScriptRun, UserConnection, WebhookDelivery

pytestmark = [pytest.mark.services, pytest.mark.slow]

REDIS_URL = os.environ.get("CONNECTIONS_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")

SCRIPTS = {
    "conn-bomb": "const a = []; while (true) a.push({x: Math.random()});",
    "conn-huge": "new Array(2 ** 30).fill(0);",
    "conn-loop": 'runAction("sms.send_me_text").then(() => { while (true) {} });',
    "conn-1": 'runAction("sms.send_me_text", {fields: {message: Trigger.ingredients.title}})\n'
    '  .then(r => console.log("sent", r.statusCode));',
}


def _database_url() -> str:
    db = db_connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(require_postgres, require_redis, transactional_db, connect_api, tmp_path):
    """Start a worker (with extra environment and pool size); stopped at the end of the test."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    started: list[subprocess.Popen[bytes]] = []

    def start(extra_env: dict[str, str] | None = None, concurrency: int = 1) -> tuple[subprocess.Popen[bytes], Path]:
        return _start(started, tmp_path, concurrency, extra_env or {})

    try:
        yield start
    finally:
        for process in started:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _wait_for_other_sessions_to_close()


@pytest.fixture
def worker(start_worker):
    return start_worker()


def _start(
    started: list[subprocess.Popen[bytes]], tmp_path: Path, concurrency: int, extra_env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "IFTTT_CONNECT_URL": settings.IFTTT_CONNECT_URL,
        "IFTTT_SERVICE_KEY": settings.IFTTT_SERVICE_KEY,
        # IFTTT's own limit: on a busy machine a memory bomb can take seconds to reach the cap.
        "CONNECTIONS_SCRIPT_TIMEOUT": "10",
        "IFTTT_REALTIME_URL": "",
        **extra_env,
    }
    log = tmp_path / f"worker{len(started)}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "iftttsvc",
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=Path(settings.BASE_DIR),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started.append(process)
    return process, log


def _wait_for_other_sessions_to_close() -> None:
    """The worker's pool process may outlive its parent by a moment; the test database is dropped next."""
    deadline = time.monotonic() + 15
    with db_connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.2)


def _fired(make_user, connection_id: str, script: str) -> FiredTrigger:
    user = make_user(connection_id.replace("-", ""))
    connection = Connection.objects.create(connection_id=connection_id, script=script)
    state = UserConnection.objects.create(connection=connection, user=user, status="enabled")
    delivery = WebhookDelivery.objects.create(payload_key=connection_id, type="trigger_subscription", event="fired")
    return FiredTrigger.objects.create(
        delivery=delivery,
        user_connection=state,
        trigger_id="youtube.new_liked_video",
        ingredients={"title": "Street Art"},
        fired_at=datetime.now(tz=UTC),
        script_state="pending",
    )


def test_a_worker_survives_hostile_scripts(worker, make_user, connect_api):
    process, log = worker
    fired = {cid: _fired(make_user, cid, script) for cid, script in SCRIPTS.items()}
    connect_api.connection_id = "conn-1"
    connect_api.enabled_users.add(fired["conn-1"].user_connection.user.public_id)
    # Not the current app: `shared_task`s resolve through the current app, and later tests' tasks
    # would otherwise be published to this broker.
    sender = Celery(broker=REDIS_URL, set_as_current=False)
    # The good script goes last: it runs only if the worker lived through the others.
    for cid in ("conn-bomb", "conn-huge", "conn-loop", "conn-1"):
        sender.send_task("connections.fired_trigger_script_run", args=[fired[cid].pk])
    deadline = time.monotonic() + 120
    while ScriptRun.objects.count() < len(SCRIPTS) and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.2)
    outcomes = dict(ScriptRun.objects.values_list("connection__connection_id", "outcome"))
    assert outcomes == {
        "conn-bomb": "memory_exceeded",
        "conn-huge": "memory_exceeded",
        "conn-loop": "timed_out",
        "conn-1": "succeeded",
    }, log.read_text()
    good = ScriptRun.objects.get(connection__connection_id="conn-1")
    assert good.logs == [{"level": "log", "message": "sent 204"}]
    assert [r.body["fields"] for r in connect_api.calls("POST", "/run") if r.body.get("fields")] == [
        {"message": "Street Art"}
    ]
    assert process.poll() is None
    text = log.read_text()
    assert "WorkerLostError" not in text and "exited with" not in text
    states = dict(FiredTrigger.objects.values_list("user_connection__connection__connection_id", "script_state"))
    assert states == {"conn-bomb": "failed", "conn-huge": "failed", "conn-loop": "failed", "conn-1": "done"}


def _wait_for(condition, process, log, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def _sender() -> Celery:
    return Celery(broker=REDIS_URL, set_as_current=False)


def test_a_long_run_is_never_run_twice_however_old_its_event(start_worker, make_user, connect_api):
    """The event waited an hour in a backlog; its script runs long. The sweep must leave it to its worker."""
    from connections.services import connections_work_sweep

    process, log = start_worker(concurrency=2)  # a second pool process would take a re-run at once
    fired = _fired(
        make_user,
        "conn-1",
        '(async () => { const r = await runAction("sms.send_me_text"); console.log("sent", r.statusCode); })();',
    )
    WebhookDelivery.objects.update(received_at=datetime.now(tz=UTC) - timedelta(hours=1))
    connect_api.enabled_users.add(fired.user_connection.user.public_id)
    connect_api.answer_next("POST", "/run$", 204, None, delay_s=4.0)  # IFTTT is slow to answer
    _sender().send_task("connections.fired_trigger_script_run", args=[fired.pk])
    _wait_for(lambda: connect_api.calls("POST", "/run"), process, log)
    fired.refresh_from_db()
    assert fired.script_state == "running" and fired.lease_expires_at is not None
    assert connections_work_sweep()["stopped_script_runs"] == 0  # the test runs tasks eagerly: a re-run would show
    _wait_for(lambda: ScriptRun.objects.exists(), process, log)
    _wait_for(lambda: FiredTrigger.objects.get().script_state == "done", process, log, seconds=10)
    time.sleep(1)  # room for a second run to show itself, were one started
    assert len(connect_api.calls("POST", "/run")) == 1
    assert ScriptRun.objects.get().logs == [{"level": "log", "message": "sent 204"}]
    # The worker logged the call for the connection's API logs (its own write path, outside a transaction).
    user_id = fired.user_connection.user.public_id
    assert list(ConnectApiCall.objects.values_list("connection_id", "status", "user_id")) == [("conn-1", 204, user_id)]


def test_a_run_its_time_limit_stops_ends_failed_and_is_never_re_run(start_worker, make_user, connect_api):
    from connections.services import connections_work_sweep

    process, log = start_worker({"CONNECTIONS_SCRIPT_TASK_SOFT_LIMIT": "2"})
    fired = _fired(
        make_user, "conn-1", '(async () => { await runAction("sms.send_me_text"); console.log("never"); })();'
    )
    connect_api.enabled_users.add(fired.user_connection.user.public_id)
    connect_api.answer_next("POST", "/run$", 204, None, delay_s=6.0)  # longer than the task may run
    _sender().send_task("connections.fired_trigger_script_run", args=[fired.pk])
    _wait_for(lambda: FiredTrigger.objects.get().script_state not in ("pending", "running"), process, log)
    fired.refresh_from_db()
    assert fired.script_state == "failed"
    assert "time limit" in fired.script_error and "Not run again" in fired.script_error
    run = ScriptRun.objects.get()
    assert run.outcome == "timed_out" and run.error == fired.script_error
    assert connections_work_sweep() == {
        "reclaimed_deliveries": 0,
        "stopped_script_runs": 0,
        "deliveries_enqueued": 0,
        "script_runs_enqueued": 0,
    }
    time.sleep(1)
    assert len(connect_api.calls("POST", "/run")) == 1
    assert process.poll() is None
