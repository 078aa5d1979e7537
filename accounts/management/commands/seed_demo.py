"""Demo data for `make run`: a demo user with a few devices and a week of history, a support login,
and a tester account with the devices every Applet recipe needs (for the people invited to test the
service on IFTTT before launch)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from devices.models import DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a published demo credential, DEBUG only unless asked
TESTER_USERNAME = "tester"
TESTER_PASSWORD = "tester-password"  # noqa: S105 - a published demo credential; set --tester-password elsewhere
SUPPORT_USERNAME = "admin"
SUPPORT_PASSWORD = "admin-password"  # noqa: S105 - a published demo credential, DEBUG only

DEMO_DEVICES: tuple[dict[str, Any], ...] = (
    {"name": "Desk lamp", "kind": DeviceKind.LIGHT, "room": "Office", "color": "wheat"},
    {"name": "Hall light", "kind": DeviceKind.LIGHT, "room": "Hallway", "color": "white"},
    {"name": "Bedside lamp", "kind": DeviceKind.LIGHT, "room": "Bedroom", "color": "orange"},
    {"name": "Coffee maker", "kind": DeviceKind.PLUG, "room": "Kitchen"},
    {"name": "Living room thermostat", "kind": DeviceKind.THERMOSTAT, "room": "Living room", "target_temperature": 21},
    {"name": "Bedroom thermostat", "kind": DeviceKind.THERMOSTAT, "room": "Bedroom", "target_temperature": 19},
    {"name": "Porch sensor", "kind": DeviceKind.MOTION_SENSOR, "room": "Porch"},
)


def _history(kind: str, start: Any, days: int, rng: random.Random) -> list[NewEvent]:
    events: list[NewEvent] = []
    for day in range(days):
        midnight = start + timedelta(days=day)
        if kind in (DeviceKind.LIGHT, DeviceKind.PLUG):
            for hour in sorted(rng.sample(range(6, 23), 4)):
                on_at = midnight + timedelta(hours=hour, minutes=rng.randrange(60))
                events.append(NewEvent(type=EventType.SWITCHED_ON, occurred_at=on_at))
                events.append(NewEvent(type=EventType.SWITCHED_OFF, occurred_at=on_at + timedelta(minutes=30)))
        elif kind == DeviceKind.THERMOSTAT:
            for half_hour in range(48):
                hour_of_day = half_hour / 2
                reading = 19.0 + 3 * (1 if 7 <= hour_of_day <= 22 else 0) + rng.uniform(-1.5, 1.5)
                at = midnight + timedelta(minutes=30 * half_hour)
                events.append(NewEvent(type=EventType.TEMPERATURE, value=round(reading, 1), occurred_at=at))
        elif kind == DeviceKind.MOTION_SENSOR:
            for _ in range(rng.randrange(3, 9)):
                at = midnight + timedelta(hours=rng.uniform(0, 24))
                events.append(NewEvent(type=EventType.MOTION, occurred_at=at))
    events.sort(key=lambda e: e.occurred_at or start)
    return events


def _seed_home(user: Any, *, start: Any, days: int, rng: random.Random, say: Any) -> int:
    """Give `user` the demo devices, each with `days` of history; returns how many events were made."""
    total = 0
    for index, spec in enumerate(DEMO_DEVICES, start=1):
        attributes = {k: v for k, v in spec.items() if k not in ("name", "kind", "room")}
        device = device_create(
            owner=user,
            name=spec["name"],
            kind=spec["kind"],
            room=spec["room"],
            occurred_at=start - timedelta(hours=index),
            source=EventSource.SYSTEM,
            **attributes,
        )
        history = _history(spec["kind"], start, days, rng)
        device_events_record(device=device, events=history, source=EventSource.SYSTEM)
        total += len(history) + 1
        say(f"  [{index}/{len(DEMO_DEVICES)}] {user.username}: {device.name}: {len(history) + 1} events")
    return total


class Command(BaseCommand):
    help = "Create the demo user (demo / demo-password) with devices and history, and a support login."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=7, help="Days of history per device (default 7).")
        parser.add_argument("--reset", action="store_true", help="Delete the demo and tester users first.")
        parser.add_argument(
            "--tester-password",
            default=TESTER_PASSWORD,
            help="The tester account's password (default: %(default)s; change it where testers sign in).",
        )
        parser.add_argument(
            "--allow-published-passwords",
            action="store_true",
            help="Create the accounts with the published passwords even with DJANGO_DEBUG off.",
        )

    def handle(
        self,
        *args: Any,
        days: int,
        reset: bool,
        tester_password: str,
        allow_published_passwords: bool = False,
        **options: Any,
    ) -> None:
        if not settings.DEBUG and not allow_published_passwords:
            # demo / demo-password is printed in the README: on a public server anyone could sign in.
            raise CommandError(
                f"DJANGO_DEBUG is off: seed_demo would create {DEMO_USERNAME} / {DEMO_PASSWORD}, a published "
                "password, on this server. Pass --allow-published-passwords if that is really wanted."
            )
        if reset:
            User.objects.filter(username__in=(DEMO_USERNAME, TESTER_USERNAME)).delete()
        if settings.DEBUG and not User.objects.filter(username=SUPPORT_USERNAME).exists():
            User.objects.create_superuser(SUPPORT_USERNAME, "admin@example.invalid", SUPPORT_PASSWORD)
            self.stdout.write(f"Created the support login {SUPPORT_USERNAME} / {SUPPORT_PASSWORD}.")
        start = (timezone.now() - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        accounts = (
            (DEMO_USERNAME, DEMO_PASSWORD, "demo@example.invalid", "Demo", "User", "Demo user"),
            (TESTER_USERNAME, tester_password, "tester@example.invalid", "Test", "User", "Tester account"),
        )
        for username, password, email, first, last, title in accounts:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"{title} already exists (use --reset to start again): {username}.")
                continue
            rng = random.Random(7)
            with transaction.atomic():
                user = User.objects.create_user(username, email, password, first_name=first, last_name=last)
                total = _seed_home(user, start=start, days=days, rng=rng, say=self.stdout.write)
            self.stdout.write(
                self.style.SUCCESS(f"{title} {username} / {password}: {len(DEMO_DEVICES)} devices, {total} events.")
            )
