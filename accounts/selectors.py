"""Reads for the account page: IFTTT's connection to the account, and the week's device activity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken

from actions.models import ActionRun
from devices.models import Device, DeviceEvent, EventType
from protocol.models import ApiCall
from protocol.registry import registry


@dataclass(frozen=True)
class IftttConnection:
    connected_since: datetime
    last_used: datetime | None


def ifttt_connection_get(*, user: Any) -> IftttConnection | None:
    """IFTTT's access to `user`'s account, or None when IFTTT holds no usable token.

    "Connected since" is the oldest token still on record for the connection (refreshing rotates
    tokens, but the first one shows when the person said yes); "last used" is IFTTT's latest call.
    """
    now = timezone.now()
    mine = Q(user=user, application__client_id=settings.IFTTT_CLIENT_ID)
    live_access = AccessToken.objects.filter(mine, expires__gt=now)
    live_refresh = RefreshToken.objects.filter(mine, revoked__isnull=True)
    if not live_access.exists() and not live_refresh.exists():
        return None
    firsts = [
        AccessToken.objects.filter(mine).aggregate(first=Min("created"))["first"],
        RefreshToken.objects.filter(mine).aggregate(first=Min("created"))["first"],
    ]
    last_used = ApiCall.objects.filter(user=user).order_by("-created_at").values_list("created_at", flat=True).first()
    return IftttConnection(connected_since=min(f for f in firsts if f is not None), last_used=last_used)


# The chart's categories, in stacking order (bottom first): what a person recognises in their week.
ACTIVITY_CATEGORIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("switches", "Switched on or off", (EventType.SWITCHED_ON, EventType.SWITCHED_OFF)),
    ("motion", "Motion", (EventType.MOTION,)),
    ("settings", "Colour or temperature set", (EventType.COLOR_CHANGED, EventType.TARGET_TEMPERATURE_SET)),
)


@dataclass(frozen=True)
class DayActivity:
    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def account_activity_by_day(*, user: Any, days: int = 7, today: date | None = None) -> list[DayActivity]:
    """Per UTC day, oldest first, how many of `user`'s device events of each category happened.

    Temperature readings are left out: a thermostat reports every half hour, and that steady
    stream would drown out what the person actually did.
    """
    today = today or timezone.now().date()
    first_day = today - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    category_of = {event_type: key for key, _, types in ACTIVITY_CATEGORIES for event_type in types}
    rows = (
        DeviceEvent.objects.filter(owner=user, type__in=list(category_of), occurred_at__gte=start)
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "type")
        .annotate(n=Count("id"))
        .order_by()
    )
    table: dict[date, dict[str, int]] = {
        first_day + timedelta(days=i): {key: 0 for key, _, _ in ACTIVITY_CATEGORIES} for i in range(days)
    }
    for row in rows:
        if row["day"] in table:
            table[row["day"]][category_of[row["type"]]] += row["n"]
    return [DayActivity(day=day, counts=counts) for day, counts in table.items()]


# --- Applet fields and runs, as a person reads them ------------------------------------------------


@dataclass(frozen=True)
class FieldValue:
    label: str  # the field's question, as IFTTT showed it ("Which device?")
    value: str  # the answer in words ("Desk lamp (Office)"), never a raw id
    missing: bool = False  # the chosen device (or option) is no longer there


def _option_labels(options: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for option in options:
        if "values" in option:
            labels.update({child["value"]: f"{child['label']} ({option['label']})" for child in option["values"]})
        else:
            labels[option["value"]] = str(option["label"])
    return labels


def fields_readable(*, spec: Any, user: Any, fields: dict[str, Any]) -> list[FieldValue]:
    """An Applet's field values for a person: device names and option labels instead of ids."""
    out: list[FieldValue] = []
    for field_spec in getattr(spec, "fields", ()):
        raw = fields.get(field_spec.slug)
        if raw in (None, ""):
            out.append(FieldValue(field_spec.label, "(not set)"))
            continue
        if field_spec.options is None:
            out.append(FieldValue(field_spec.label, str(raw)))
            continue
        labels = _option_labels(field_spec.options(user))
        if str(raw) in labels:
            out.append(FieldValue(field_spec.label, labels[str(raw)]))
            continue
        device = Device.objects.filter(owner=user, public_id=str(raw)).first()
        if device is not None:  # in the account, but not a kind this field offers
            out.append(FieldValue(field_spec.label, f"{device.name} (not a device this field accepts)", True))
        else:
            out.append(FieldValue(field_spec.label, "a device or choice no longer in this account", True))
    return out


@dataclass(frozen=True)
class RunRow:
    run: Any
    action: str  # the action's name, as on IFTTT
    fields: list[FieldValue]

    @property
    def anchor(self) -> str:
        return f"run-{self.run.public_id}"


def account_recent_runs(*, user: Any, limit: int = 10) -> list[RunRow]:
    """What IFTTT's Applets did in the person's account, newest first (`/account/#run-<id>` lands on one)."""
    rows = []
    for run in ActionRun.objects.filter(user=user).order_by("-created_at", "-id")[:limit]:
        spec = registry.actions.get(run.action_slug)
        rows.append(
            RunRow(
                run=run,
                action=spec.label if spec else run.action_slug,
                fields=fields_readable(spec=spec, user=user, fields=run.fields or {}),
            )
        )
    return rows
