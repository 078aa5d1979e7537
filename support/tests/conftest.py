"""Data for the support console's tests: an end user with an IFTTT life, and the people who look at it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from actions.models import ActionRun, ActionRunStatus
from devices.models import Device, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from protocol.access import ifttt_token_issue
from protocol.models import ApiCall
from support.services import support_group_ensure
from triggers.models import TriggerIdentity


@dataclass
class Life:
    user: Any
    token: str
    lamp: Device
    thermostat: Device
    sensor: Device
    identity: TriggerIdentity
    hot_identity: TriggerIdentity
    run: ActionRun


@pytest.fixture
def life(db: Any, make_user: Callable[..., Any]) -> Life:
    user = make_user("carol")
    token = ifttt_token_issue(user=user)
    lamp = device_create(owner=user, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office")
    thermostat = device_create(owner=user, name="Hall thermostat", kind=DeviceKind.THERMOSTAT, room="Hall")
    sensor = device_create(owner=user, name="Porch sensor", kind=DeviceKind.MOTION_SENSOR, room="Porch")
    start = timezone.now() - timedelta(hours=3)
    device_events_record(
        device=thermostat,
        events=[
            NewEvent(type=EventType.TEMPERATURE, value=v, occurred_at=start + timedelta(minutes=5 * i))
            for i, v in enumerate((19.0, 20.5, 21.0))
        ],
        source=EventSource.DEVICE,
    )
    identity = TriggerIdentity.objects.create(
        identity="ti-lamp-on", user=user, trigger_slug="device_switched_on", fields={"device": lamp.public_id}
    )
    hot = TriggerIdentity.objects.create(
        identity="ti-hot",
        user=user,
        trigger_slug="temperature_rises_above",
        fields={"device": thermostat.public_id, "threshold": "25"},
        last_polled_at=timezone.now() - timedelta(days=2),
    )
    run = ActionRun.objects.create(
        user=user,
        action_slug="switch_on",
        fields={"device": lamp.public_id},
        status=ActionRunStatus.SKIPPED,
        message="Desk lamp is offline",
        request_id="req-run-1",
    )
    ApiCall.objects.create(
        method="POST",
        path="/ifttt/v1/triggers/device_switched_on",
        endpoint="trigger-poll",
        slug="device_switched_on",
        status_code=200,
        duration_ms=3.2,
        request_id="req-poll-1",
        user=user,
        trigger_identity="ti-lamp-on",
        items_returned=0,
        newest_event_id="",
    )
    return Life(
        user=user,
        token=token.token,
        lamp=lamp,
        thermostat=thermostat,
        sensor=sensor,
        identity=identity,
        hot_identity=hot,
        run=run,
    )


@pytest.fixture
def support_user(db: Any, make_user: Callable[..., Any]) -> Any:
    person = make_user("sam", is_staff=True)
    person.groups.add(support_group_ensure())
    return person


@pytest.fixture
def support_client(client: Client, support_user: Any) -> Client:
    client.force_login(support_user)
    return client


@pytest.fixture
def admin_client_(client: Client, make_user: Callable[..., Any]) -> Client:
    boss = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(boss)
    return client
