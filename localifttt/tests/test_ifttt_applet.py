"""`ifttt_applet` runs an Applet against this project, served in-process, as IFTTT would.

"When the desk lamp switches on, set the hall light to blue": the lamp's new event must run the
action exactly once, by polling or on a Realtime notification sent to the emulator's endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command

from devices.models import Device, DeviceKind
from devices.services import device_create
from localifttt.applet import fill
from localifttt.inprocess import service_in_thread
from localifttt.tests.ports import free_port
from protocol.access import ifttt_application_ensure, ifttt_token_issue
from triggers.models import TriggerIdentity

APPLET = [
    "--trigger",
    "device_switched_on",
    "--trigger-field",
    "device=Desk lamp",
    "--action",
    "set_light_color",
    "--action-field",
    "lights=Hall light",
    "--action-field",
    "color=blue",
]


@pytest.fixture
def home(make_user: Callable[..., Any]) -> Any:
    ifttt_application_ensure()  # what `setup_ifttt` does on deploy
    user = make_user("alice")
    device_create(owner=user, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office", color="white")
    device_create(owner=user, name="Hall light", kind=DeviceKind.LIGHT, room="Hallway", color="white")
    return user


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ingredients_fill_action_fields() -> None:
    assert fill("{{device_name}} turned on", {"device_name": "Desk lamp"}) == ("Desk lamp turned on", [])
    assert fill("{{ room }}: {{nope}}", {"room": "Office"}) == ("Office: ", ["nope"])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_new_event_runs_the_action_once(home: Any) -> None:
    out = StringIO()
    with service_in_thread() as url:
        call_command(
            "ifttt_applet",
            "--url",
            url,
            "--user",
            "alice",
            "--password",
            "correct-horse-battery",
            *APPLET,
            "--realtime-port",
            "-1",
            "--poll-every",
            "0.3",
            # Nobody switches the lamp on in this test, so the emulator does, through the service's actions.
            "--nudge-after",
            "0.5",
            "--nudge-action",
            "switch_off",
            "--nudge-action",
            "switch_on",
            "--stop-after-runs",
            "1",
            "--stop-after",
            "30",
            stdout=out,
        )

    text = out.getvalue()
    assert "Trigger field device: “Desk lamp” is option" in text
    assert "earlier event(s) are history" in text
    assert text.count("  ✓ done: record ") == 1, text
    assert '"device_name": "Desk lamp"' in text
    assert Device.objects.get(owner=home, name="Hall light").color == "blue"
    # Turning the Applet off deletes its trigger identity, as IFTTT does.
    identity = TriggerIdentity.objects.get(user=home, trigger_slug="device_switched_on")
    assert identity.deleted_at is not None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_realtime_notification_polls_at_once_and_ingredients_fill_fields(home: Any, settings: Any) -> None:
    token = ifttt_token_issue(user=home).token
    realtime_port = free_port()
    out = StringIO()
    failure: list[BaseException] = []
    notifications = f"http://127.0.0.1:{realtime_port}/v1/notifications"

    with service_in_thread() as url:

        def run() -> None:
            try:
                call_command(
                    "ifttt_applet",
                    "--url",
                    url,
                    f"--token={token}",  # a token may start with "-"
                    "--trigger",
                    "device_switched_on",
                    "--trigger-field",
                    "device=Desk lamp",
                    # The device that switched on turns blue: {{device_id}} comes from the event.
                    "--action",
                    "set_light_color",
                    "--action-field",
                    "lights={{device_id}}",
                    "--action-field",
                    "color=blue",
                    "--realtime-port",
                    str(realtime_port),
                    "--poll-every",
                    "600",  # only a notification can make it poll within this test
                    "--stop-after-runs",
                    "1",
                    "--stop-after",
                    "30",
                    stdout=out,
                )
            except BaseException as exc:
                failure.append(exc)

        applet = threading.Thread(target=run)
        applet.start()
        wait_for(lambda: "only new ones run the action" in out.getvalue())
        lamp_on = requests.post(
            f"{url}/ifttt/v1/actions/switch_on",
            json={"actionFields": {"device": Device.objects.get(owner=home, name="Desk lamp").public_id}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert lamp_on.status_code == 200
        refused = requests.post(
            notifications,
            json={"data": [{"user_id": home.public_id}]},
            headers={"IFTTT-Service-Key": "wrong"},
            timeout=10,
        )
        assert refused.status_code == 401
        accepted = requests.post(
            notifications,
            json={"data": [{"user_id": home.public_id}]},
            headers={"IFTTT-Service-Key": settings.IFTTT_SERVICE_KEY},
            timeout=10,
        )
        assert accepted.status_code == 200
        applet.join(timeout=40)

    assert not failure, failure
    text = out.getvalue()
    assert "refused a notification with a wrong or missing IFTTT-Service-Key" in text
    assert "Realtime notification for this Applet: polling now." in text
    assert "Realtime poll: 1 new event(s)." in text
    assert Device.objects.get(owner=home, name="Desk lamp").color == "blue"
    assert Device.objects.get(owner=home, name="Hall light").color == "white"


@pytest.mark.django_db(transaction=True)
def test_an_unknown_option_label_says_which_options_there_are(home: Any) -> None:
    token = ifttt_token_issue(user=home).token
    with service_in_thread() as url, pytest.raises(CommandError) as failure:
        call_command(
            "ifttt_applet",
            "--url",
            url,
            f"--token={token}",  # a token may start with "-"
            *[a.replace("Desk lamp", "Garage door") for a in APPLET],
            "--realtime-port",
            "-1",
            stdout=StringIO(),
        )

    assert "“Garage door” is not an option of trigger field device" in str(failure.value)
    assert "Desk lamp" in str(failure.value) and "Hall light" in str(failure.value)


def test_a_service_that_is_not_running_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match="Is the service running at"):
        call_command(
            "ifttt_applet", "--url", url, "--user", "demo", "--password", "demo-password", *APPLET, stdout=StringIO()
        )


def test_the_recipes_are_listed_one_a_line() -> None:
    from protocol.recipes import RECIPES

    out = StringIO()
    call_command("ifttt_applet", "--list", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == len(RECIPES) >= 12
    assert lines[0].startswith("porch_motion_warm_up ")
    assert any("?list_devices" in line for line in lines)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_recipes_with_queries_and_a_filter_run_end_to_end_on_the_tester_account() -> None:
    # Every recipe runs in CI against `make run` and its worker (.ci/run); here, those with queries.
    ifttt_application_ensure()
    call_command("seed_demo", "--days", "1", "--allow-published-passwords", stdout=StringIO())
    out = StringIO()
    with service_in_thread(port=free_port()) as url:
        call_command(
            "ifttt_applet",
            "--url",
            url,
            "--user",
            "tester",
            "--password",
            "tester-password",
            *("--recipe", "leave_desk_light_hallway", "--recipe", "bedroom_heating_like_living_room"),
            *("--recipe", "porch_motion_hall_light_if_off", "--recipe", "porch_motion_bedside_red"),
            "--cause",
            "--realtime-port",
            "-1",
            "--poll-every",
            "0.2",
            "--nudge-after",
            "0.1",
            stdout=out,
        )

    text = out.getvalue()
    assert "✗" not in text, text
    # A query's first row fills the action's field, and the filter sees the query's ingredients.
    assert "? list_devices" in text and '"device_name": "Hall light"' in text
    assert "? current_temperature" in text
    from accounts.models import User

    tester = User.objects.get(username="tester")
    bedroom = Device.objects.get(owner=tester, name="Bedroom thermostat")
    assert bedroom.target_temperature == 21  # the living room's target, read by the query
    assert Device.objects.get(owner=tester, name="Bedside lamp").color == "red"


@pytest.mark.django_db(transaction=True)
def test_an_applet_with_a_query_fills_the_action_from_its_first_row(home: Any) -> None:
    token = ifttt_token_issue(user=home).token
    out = StringIO()
    with service_in_thread(port=free_port()) as url:
        call_command(
            "ifttt_applet",
            *("--url", url, f"--token={token}", "--trigger", "device_switched_on", "--trigger-field"),
            "device=Desk lamp",
            *("--query", "list_devices", "--query-field", "list_devices.room=Hallway"),
            *("--action", "set_light_color", "--action-field", "lights={{list_devices.device_id}}"),
            *("--action-field", "color=green", "--realtime-port", "-1", "--poll-every", "0.2"),
            *("--nudge-after", "0.1", "--nudge-action", "switch_off", "--nudge-action", "switch_on"),
            *("--stop-after-runs", "1", "--stop-after", "20"),
            stdout=out,
        )

    assert "? list_devices" in out.getvalue(), out.getvalue()
    assert Device.objects.get(owner=home, name="Hall light").color == "green"
