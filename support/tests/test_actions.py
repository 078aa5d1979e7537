"""Each staff action: its effect, and its line in the admin log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from oauth2_provider.models import AccessToken

from actions.models import ActionRun
from devices.models import DeviceEvent, EventSource, EventType
from devices.services import device_set_online
from triggers import services as trigger_services


def _act(client: Client, changelist: str, action: str, pk: int) -> Any:
    return client.post(
        reverse(changelist), {"action": action, "_selected_action": [str(pk)], "index": "0"}, follow=True
    )


def _logged(obj: Any) -> list[str]:
    return list(LogEntry.objects.filter(object_id=str(obj.pk)).values_list("change_message", flat=True))


def test_disconnect_ifttt_revokes_the_users_tokens(support_client: Client, life: Any) -> None:
    assert AccessToken.objects.filter(user=life.user).exists()
    response = _act(support_client, "admin:accounts_user_changelist", "disconnect_ifttt", life.user.pk)
    assert "IFTTT disconnected (1 token(s) revoked)" in response.content.decode()
    assert not AccessToken.objects.filter(user=life.user).exists()
    assert any(m.startswith("Disconnected IFTTT") for m in _logged(life.user))
    # IFTTT's next call with the old token is refused.
    poll = support_client.post(
        "/ifttt/v1/triggers/new_device_added",
        "{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {life.token}",
    )
    assert poll.status_code == 401


def test_fire_test_event_records_an_event_the_triggers_see(support_client: Client, life: Any) -> None:
    response = _act(support_client, "admin:devices_device_changelist", "fire_test_event", life.sensor.pk)
    assert "recorded Motion detected" in response.content.decode()
    event = DeviceEvent.objects.filter(device=life.sensor, type=EventType.MOTION).get()
    assert event.source == EventSource.ADMIN
    _act(support_client, "admin:devices_device_changelist", "fire_test_event", life.lamp.pk)
    life.lamp.refresh_from_db()
    assert life.lamp.is_on
    # The lamp's switched-on identity has it on its feed, so IFTTT's next poll returns it.
    assert life.identity.feed.filter(event__type=EventType.SWITCHED_ON).exists()
    assert any(m.startswith("Fired a test event") for m in _logged(life.lamp))


@pytest.mark.parametrize(("action", "online"), [("mark_offline", False), ("mark_online", True)])
def test_mark_device_offline_and_online(support_client: Client, life: Any, action: str, online: bool) -> None:
    device_set_online(device=life.lamp, online=not online)
    _act(support_client, "admin:devices_device_changelist", action, life.lamp.pk)
    life.lamp.refresh_from_db()
    assert life.lamp.online is online
    assert f"Marked {'online' if online else 'offline'}." in _logged(life.lamp)


def test_replay_an_action_run(support_client: Client, life: Any) -> None:
    response = _act(support_client, "admin:actions_actionrun_changelist", "replay", life.run.pk)
    assert "Replayed switch_on: Succeeded" in response.content.decode()
    replay = ActionRun.objects.exclude(pk=life.run.pk).get()
    assert replay.status == "succeeded" and replay.ifttt_source == {"replay_of": life.run.public_id}
    life.lamp.refresh_from_db()
    assert life.lamp.is_on
    assert any(m.startswith("Replayed as run") for m in _logged(life.run))


def test_replay_that_cannot_succeed_says_why(support_client: Client, life: Any) -> None:
    device_set_online(device=life.lamp, online=False)
    response = _act(support_client, "admin:actions_actionrun_changelist", "replay", life.run.pk)
    assert "Skipped" in response.content.decode() and "offline" in response.content.decode()


class _Ifttt(BaseHTTPRequestHandler):
    """IFTTT's Realtime endpoint, played by a local server that records what it receives."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append({"body": json.loads(body), "key": self.headers.get("IFTTT-Service-Key")})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def realtime_server(settings: Any) -> Iterator[list[dict[str, Any]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 8431), _Ifttt)
    _Ifttt.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.IFTTT_REALTIME_URL = "http://127.0.0.1:8431/v1/notifications"
    settings.REALTIME_COALESCE_SECONDS = 0.0
    try:
        yield _Ifttt.received
    finally:
        server.shutdown()
        server.server_close()


def test_resend_realtime_notifies_ifttt(
    support_client: Client, life: Any, realtime_server: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = _act(
            support_client, "admin:triggers_triggeridentity_changelist", "resend_realtime", life.identity.pk
        )
    assert "Realtime notification sent for ti-lamp-on" in response.content.decode()
    assert realtime_server, "IFTTT's Realtime endpoint was not called"
    assert {"trigger_identity": "ti-lamp-on"} in realtime_server[-1]["body"]["data"]
    assert any(m.startswith("Resent a Realtime notification") for m in _logged(life.identity))
    # The notification and IFTTT's answer show on the diagnosis page.
    page = support_client.get(reverse("support:diagnosis"), {"identity": "ti-lamp-on"}).content.decode()
    deliveries = page[page.index('id="deliveries"') :]
    assert "Delivered" in deliveries and "200" in deliveries


def test_resend_for_a_deleted_identity_is_refused(support_client: Client, life: Any, settings: Any) -> None:
    settings.IFTTT_REALTIME_URL = "http://127.0.0.1:8431/v1/notifications"
    trigger_services.trigger_identity_delete(user=life.user, identity=life.identity.identity)
    response = _act(support_client, "admin:triggers_triggeridentity_changelist", "resend_realtime", life.identity.pk)
    assert "it is not polled any more" in response.content.decode()
    assert not _logged(life.identity)
