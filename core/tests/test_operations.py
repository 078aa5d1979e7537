"""What an operator points a load balancer, Prometheus and a log pipeline at."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from conftest import IftttClient, free_port, need
from devices.models import DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from protocol.models import ApiCall


def test_liveness_needs_nothing_and_is_not_in_the_api_log(client: Client, db: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert ApiCall.objects.count() == 0


def test_readiness_is_ready_on_the_embedded_defaults(client: Client, db: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["failed"] == []
    assert response.json()["checks"]["database"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_readiness_names_a_database_that_does_not_answer(client: Client, settings: Any) -> None:
    database = connections.settings["default"]
    saved = dict(database)
    if database["ENGINE"].endswith("sqlite3"):
        database["NAME"] = "/nonexistent-folder/db.sqlite3"
    else:
        database["PORT"] = str(free_port())  # nothing listens there
    try:
        response = client.get("/readyz")
    finally:
        database.clear()
        database.update(saved)
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert response["Retry-After"] == str(settings.HEALTH_RETRY_AFTER_SECONDS)
    assert client.get("/readyz").status_code == 200  # and back, once it answers


@pytest.fixture
def own_redis() -> Iterator[tuple[int, Any]]:
    """A Redis server of this test's own, on a free port, that the test may stop and start."""
    binary = shutil.which("redis-server")
    need(binary is not None, "this test needs redis-server (Debian's redis-server package)")
    port = free_port()
    command = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                return process
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    server = {"process": start()}

    def running(up: bool) -> None:
        if up:
            server["process"] = start()
        else:
            server["process"].terminate()
            server["process"].wait()

    yield port, running
    if server["process"].poll() is None:
        server["process"].terminate()
        server["process"].wait()


@pytest.mark.services
@pytest.mark.django_db
def test_readiness_flips_when_the_broker_stops_and_back_when_it_returns(
    client: Client, settings: Any, own_redis: tuple[int, Any]
) -> None:
    from celery import current_app

    port, running = own_redis
    settings.CELERY_TASK_ALWAYS_EAGER = False
    current_app.conf.task_always_eager = False
    saved = {name: current_app.conf[name] for name in ("broker_url", "broker_read_url", "broker_write_url")}
    for name in saved:
        current_app.conf[name] = f"redis://127.0.0.1:{port}/0"
    try:
        assert client.get("/readyz").status_code == 200
        running(False)
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["failed"] == ["broker"]
        assert down.json()["checks"]["broker"]["detail"]
        running(True)
        assert client.get("/readyz").status_code == 200
    finally:
        current_app.conf.task_always_eager = True
        current_app.conf.update(saved)


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_what_was_sent(client: Client, ifttt: IftttClient, setup_data: dict[str, Any]) -> None:
    before = client.get("/metrics").content.decode()
    fields = setup_data["samples"]["triggers"]["device_switched_on"]
    for _ in range(3):
        ifttt.post("/ifttt/v1/triggers/device_switched_on", {"triggerFields": fields, "trigger_identity": "ti-m"})
    ifttt.post("/ifttt/v1/triggers/no_such_trigger", {"triggerFields": {}})
    after = client.get("/metrics")
    assert after.status_code == 200 and after["Content-Type"].startswith("text/plain")
    text = after.content.decode()
    polls = _sample(text, "ifttt_requests_total", endpoint="trigger-poll", status_class="2xx")
    assert polls - _sample(before, "ifttt_requests_total", endpoint="trigger-poll", status_class="2xx") == 3
    assert _sample(text, "ifttt_requests_total", status_class="4xx") >= 1
    per_trigger = {"trigger": "device_switched_on", "realtime": "no"}
    polled = _sample(text, "ifttt_trigger_polls_total", **per_trigger)
    assert polled - _sample(before, "ifttt_trigger_polls_total", **per_trigger) == 3
    assert _sample(text, "ifttt_trigger_polls_total", trigger="unknown", realtime="no") >= 1
    assert "realtime_identities_pending" in text
    # Labels name the endpoint and status class only: a user or token label would grow without bound.
    label_names = {
        name
        for line in text.splitlines()
        if line.startswith("ifttt_requests_total{")
        for name in re.findall(r'(\w+)="', line)
    }
    assert label_names == {"endpoint", "status_class"}


def test_metrics_are_not_public_by_default(client: Client, settings: Any, db: Any) -> None:
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    allowed = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert allowed.status_code == 200


def test_every_log_line_of_a_request_carries_its_request_id(client: Client, db: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="django.request")
    response = client.get("/ifttt/v1/status", HTTP_X_REQUEST_ID="req-abc-123")  # no key: a 401, logged
    assert response.status_code == 401
    assert response["X-Request-ID"] == "req-abc-123"
    lines = [r for r in caplog.records if r.name == "django.request"]
    assert lines and all(getattr(r, "request_id", None) == "req-abc-123" for r in lines)


def test_json_logs_are_one_object_a_line(settings: Any) -> None:
    from django.utils.log import configure_logging

    settings.LOGGING["handlers"]["console"]["formatter"] = "json"
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    handler = logging.getLogger().handlers[0]
    record = logging.LogRecord("iftttsvc", logging.ERROR, __file__, 1, "Realtime delivery failed", None, None)
    for filter_ in handler.filters:
        filter_.filter(record)
    line = json.loads(handler.format(record))
    assert line["message"] == "Realtime delivery failed" and line["level"] == "ERROR" and "request_id" in line
    settings.LOGGING["handlers"]["console"]["formatter"] = "text"
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


def test_the_dashboard_and_alerts_use_metrics_the_service_exports(client: Client, db: Any, settings: Any) -> None:
    import re
    from pathlib import Path

    exported = set(re.findall(r"^# TYPE (\S+)", client.get("/metrics").content.decode(), re.M))
    exported.add("celery_queue_depth")  # read from the broker: absent when tasks run eagerly, as here
    labels = {"status_class", "outcome", "endpoint", "queue", "source", "le", "by", "trigger"}
    docs = Path(settings.BASE_DIR) / "docs" / "operations"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions += re.findall(r"expr: (.+)", (docs / "alerts.yml").read_text())
    used = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for expr in expressions
        for name in re.findall(r"\b([a-z]+(?:_[a-z0-9]+)+)\b(?=[{\[ )]|$)", expr)
        if not name.startswith(("histogram_", "clamp_", "probe_")) and name not in labels
    }
    assert used and used <= {re.sub(r"_total$", "", n) + s for n in exported for s in ("", "_total")}, used - exported


def test_metrics_count_device_events_once_stored(
    client: Client, db: Any, django_capture_on_commit_callbacks: Any
) -> None:
    owner = get_user_model().objects.create_user("metered", password="pw-metered-123")
    lamp = device_create(owner=owner, name="Lamp", room="Office", kind=DeviceKind.LIGHT)
    before = _sample(client.get("/metrics").content.decode(), "device_events_accepted_total", source=EventSource.DEVICE)
    with django_capture_on_commit_callbacks(execute=True):
        device_events_record(
            device=lamp,
            events=[NewEvent(type=EventType.SWITCHED_ON, external_id=f"m{n}") for n in range(2)],
            source=EventSource.DEVICE,
        )
        # A retried report of the same events is answered, not counted again.
        device_events_record(
            device=lamp, events=[NewEvent(type=EventType.SWITCHED_ON, external_id="m0")], source=EventSource.DEVICE
        )
    after = _sample(client.get("/metrics").content.decode(), "device_events_accepted_total", source=EventSource.DEVICE)
    assert after - before == 2
