"""Scripts in a real Celery worker: a memory bomb or an endless loop is stopped and the worker carries on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection as db_connection

from connections.models import Connection, FiredTrigger, ScriptRun, UserConnection, WebhookDelivery

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
def worker(require_postgres, require_redis, transactional_db, connect_api, tmp_path):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
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
    }
    log = tmp_path / "worker.log"
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
                "--concurrency=1",
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
    try:
        yield process, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _wait_for_other_sessions_to_close()


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
    assert set(FiredTrigger.objects.values_list("script_state", flat=True)) == {"done"}
