"""`ifttt_connection` runs a connection against this project, served in-process, as IFTTT Connect would.

"When the desk lamp switches on, turn the hall light blue and text me": the fired trigger runs the
connection's script, whose calls the emulator answers: this service's action through its Service API
(the hall light really turns blue), the text message recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection as db_connection

from connections.models import Connection, ConnectionField, FiredTrigger, ScriptRun
from devices.models import Device, DeviceKind, EventSource
from devices.services import device_create, device_switch
from localifttt.inprocess import service_in_thread
from localifttt.tests.ports import free_port
from protocol.access import ifttt_application_ensure

SCRIPT = """
(async () => {
  const lit = await runAction("smarthome.set_light_color");
  console.log(`hall light: ${lit.statusCode}`);
  await runAction("sms.send_me_text", {fields: {message: `${Trigger.ingredients.device_name} is on`}});
})();
"""
# `make demo-connection`'s script also performs a query: threaded serving (PostgreSQL) answers it while
# the script's own webhook is in progress; the in-memory SQLite server answers one request at a time.
DEMO_SCRIPT = Path(settings.BASE_DIR) / "localifttt" / "demo" / "connection.js"


@pytest.fixture
def home(make_user: Callable[..., Any]) -> Any:
    ifttt_application_ensure()
    user = make_user("alice")
    lamp = device_create(owner=user, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office", color="white")
    device_create(owner=user, name="Hall light", kind=DeviceKind.LIGHT, room="Hallway", color="white")
    device_switch(device=lamp, on=True, source=EventSource.DEVICE)  # the event the connection fires for
    return user


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_connection_runs_end_to_end(home: Any, settings: Any) -> None:
    port = free_port()
    settings.IFTTT_CONNECT_URL = f"http://127.0.0.1:{port}"
    with_query = db_connection.vendor == "postgresql"
    connection = Connection.objects.create(connection_id="lights-and-texts", script=SCRIPT)
    # The connection's configuration: the colour is ours (blue); which lights is the user's choice.
    for field_id, rule in (("color", {"visibility": "set_by_you", "value": "blue"}), ("lights", {})):
        ConnectionField.objects.create(
            connection=connection,
            feature_id="local-feature",
            kind="action",
            step_id="smarthome.set_light_color",
            field_id=field_id,
            **rule,
        )
    out = StringIO()
    with service_in_thread() as url:
        call_command(
            "ifttt_connection",
            "--url",
            url,
            "--user",
            "alice",
            "--password",
            "correct-horse-battery",
            "--connection-id",
            "lights-and-texts",
            "--trigger",
            "device_switched_on",
            "--trigger-field",
            "device=Desk lamp",
            "--field",
            "set_light_color.lights=Hall light",
            "--connect-port",
            str(port),
            "--quiet",
            "1",
            *(["--script", str(DEMO_SCRIPT)] if with_query else []),
            stdout=out,
        )
    text = out.getvalue()
    assert "Webhook connection/enabled → 200" in text, text
    assert 'Webhook trigger_subscription/fired: smarthome.device_switched_on {"device_id"' in text
    assert "runAction smarthome.set_light_color" in text and '"color": "blue"' in text, text
    assert "✓ smarthome.set_light_color done: record" in text
    message = "Desk lamp switched on; in the hallway: Hall light" if with_query else "Desk lamp is on"
    assert f'runAction sms.send_me_text {{"message": "{message}"}} → 204 (another service\'s; recorded)' in text
    assert Device.objects.get(owner=home, name="Hall light").color == "blue"
    run = ScriptRun.objects.get()
    assert run.outcome == "succeeded", run.error
    assert {"level": "log", "message": "hall light: 204"} in run.logs
    assert FiredTrigger.objects.get().script_state == "done"
    if with_query:
        assert "performQuery smarthome.list_devices" in text
        _wait_for_request_threads_to_close()


def _wait_for_request_threads_to_close() -> None:
    """The server's last request threads close their sessions a moment after answering; the test
    database is dropped next."""
    deadline = time.monotonic() + 10
    with db_connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)
