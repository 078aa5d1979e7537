"""Reads for the support console: the diagnosis of one trigger identity, and the health overview.

Every query here reads a bounded number of rows through an index (the identity's polls, the
user's calls, the device's recent readings), so the pages stay fast on a big database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Avg, Count, Max, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import User
from devices.models import Device, DeviceEvent, EventType
from protocol.middleware import FINGERPRINT_LENGTH
from protocol.models import ApiCall
from protocol.registry import TriggerSpec, registry
from triggers.models import TriggerIdentity

EVENTS_SHOWN = 50
POLLS_SHOWN = 50
# IFTTT polls an active identity about hourly; longer than this without a poll deserves a word.
POLL_EXPECTED_WITHIN = timedelta(hours=2)
HEALTH_WINDOW = timedelta(hours=24)


def user_find(*, key: str) -> User | None:
    """A user by email, username, public id or numeric id: whatever support was given."""
    key = key.strip()
    if not key:
        return None
    query = Q(email__iexact=key) | Q(username=key) | Q(public_id=key)
    if key.isdigit():
        query |= Q(pk=int(key))
    return User.objects.filter(query).order_by("pk").first()


# --- Realtime deliveries (recorded by the triggers app, when it records them) ----------------------


def realtime_delivery_model() -> type[models.Model] | None:
    try:
        return apps.get_model("triggers", "RealtimeDelivery")
    except LookupError:
        return None


def _delivery_identity_filter(model: type[models.Model], identity: TriggerIdentity) -> Q | None:
    for f in model._meta.get_fields():
        if (
            getattr(f, "related_model", None) is TriggerIdentity
            and (f.concrete or f.many_to_many)
            and not f.auto_created
        ):
            return Q(**{f.name: identity})
    names = {f.name for f in model._meta.get_fields()}
    for name in ("trigger_identity", "identity"):
        if name in names:
            return Q(**{name: identity.identity})
    return None


@dataclass
class Delivery:
    at: datetime | None
    status: str
    detail: str


def _delivery_row(row: models.Model) -> Delivery:
    at = next(
        (getattr(row, n) for n in ("sent_at", "attempted_at", "created_at", "updated_at") if getattr(row, n, None)),
        None,
    )
    status = str(getattr(row, "get_status_display", lambda: getattr(row, "status", ""))())
    detail = " · ".join(
        str(getattr(row, n))
        for n in ("response_status", "status_code", "attempts", "error", "last_error")
        if getattr(row, n, None) not in (None, "")
    )
    return Delivery(at=at, status=status, detail=detail or str(row))


def realtime_deliveries_for(*, identity: TriggerIdentity, limit: int = 20) -> list[Delivery] | None:
    """The identity's recent Realtime notifications, or None where deliveries are not recorded."""
    model = realtime_delivery_model()
    if model is None:
        return None
    condition = _delivery_identity_filter(model, identity)
    if condition is None:
        return None
    rows = model._default_manager.filter(condition).order_by("-pk")[:limit]
    return [_delivery_row(row) for row in rows]


# --- Token state ----------------------------------------------------------------------------------


@dataclass
class TokenState:
    created: datetime
    expires: datetime
    last_used: datetime | None
    masked: str


@dataclass
class Connection:
    tokens: list[TokenState]
    disconnected_at: datetime | None  # the last time IFTTT's access was revoked
    disconnected_by: str  # by whom, in words
    refused_since: datetime | None  # 401s after the last accepted call
    refused_count: int
    last_accepted: datetime | None


def ifttt_connection_get(*, user: Any) -> Connection:
    from oauth2_provider.models import AccessToken

    tokens = []
    for token in AccessToken.objects.filter(user=user, application__client_id=settings.IFTTT_CLIENT_ID).order_by(
        "-created"
    )[:10]:
        fingerprint = (token.token_checksum or "")[:FINGERPRINT_LENGTH]
        last_used = (
            ApiCall.objects.filter(token_fingerprint=fingerprint, status_code__lt=400)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
            if fingerprint
            else None
        )
        tokens.append(
            TokenState(created=token.created, expires=token.expires, last_used=last_used, masked=f"…{fingerprint[-4:]}")
        )
    calls = ApiCall.objects.filter(user=user)
    last_accepted = (
        calls.filter(status_code__lt=400).order_by("-created_at").values_list("created_at", flat=True).first()
    )
    refused = calls.filter(status_code=401)
    if last_accepted is not None:
        refused = refused.filter(created_at__gt=last_accepted)
    refused_times = list(refused.order_by("-created_at").values_list("created_at", flat=True)[:500])
    return Connection(
        tokens=tokens,
        disconnected_at=user.ifttt_disconnected_at,
        disconnected_by=user.get_ifttt_disconnected_by_display(),
        refused_since=refused_times[-1] if refused_times else None,
        refused_count=len(refused_times),
        last_accepted=last_accepted,
    )


# --- Diagnosis ------------------------------------------------------------------------------------


@dataclass
class EventRow:
    event: DeviceEvent
    returned_at: datetime | None  # the first poll that showed it to IFTTT


@dataclass
class Diagnosis:
    user: Any
    trigger_slug: str
    spec: TriggerSpec | None
    identity: TriggerIdentity | None
    identities: list[TriggerIdentity]
    device: Device | None = None
    events: list[EventRow] = field(default_factory=list)
    polls: list[ApiCall] = field(default_factory=list)
    refused: list[ApiCall] = field(default_factory=list)
    deliveries: list[Delivery] | None = None
    connection: Connection | None = None
    readings: list[DeviceEvent] = field(default_factory=list)
    conclusions: list[str] = field(default_factory=list)
    window_start: datetime | None = None
    window_end: datetime | None = None


def _when(at: datetime | None) -> str:
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M} UTC" if at else "never"


def _conclude(d: Diagnosis, now: datetime) -> list[str]:
    out: list[str] = []
    conn = d.connection
    if d.identity is None:
        out.append(
            f"IFTTT has never polled the trigger “{d.trigger_slug}” for this user: no Applet with it is on, or "
            "IFTTT could not reach us when it was turned on. Ask the user to turn the Applet off and on."
        )
    elif d.identity.deleted_at:
        out.append(
            f"IFTTT deleted this trigger identity on {_when(d.identity.deleted_at)}: the Applet was turned off "
            "or edited, so it is no longer polled or notified."
        )
    if conn is not None:
        if conn.refused_since:
            out.append(
                f"IFTTT's calls for this user have been refused (401) since {_when(conn.refused_since)} "
                f"({conn.refused_count} call(s)): its token no longer works. "
                "The user must reconnect the service on IFTTT."
            )
        if not conn.tokens:
            if conn.disconnected_at:
                out.append(f"The token was revoked on {_when(conn.disconnected_at)}, by {conn.disconnected_by}.")
            else:
                out.append("The user has no IFTTT token: IFTTT is not connected to this account (or was disconnected).")
    if d.identity is not None and d.identity.deleted_at is None:
        last = d.identity.last_polled_at
        if last is None or now - last > POLL_EXPECTED_WITHIN:
            out.append(f"IFTTT has not polled this identity since {_when(last)}.")
    if d.spec is not None and d.spec.fields and d.spec.fields[0].slug == "device" and d.device is None:
        out.append("The device chosen in the Applet is no longer in this account: the Applet must be edited.")
    elif d.device is not None and not d.device.online:
        out.append(f"{d.device.name} is marked offline, so it may not be reporting events.")
    if not d.events:
        if d.trigger_slug == "temperature_rises_above" and d.identity is not None:
            threshold = d.identity.fields.get("threshold", "?")
            values = [r.value for r in d.readings if r.value is not None]
            highest = f"; the highest of the last {len(values)} readings was {max(values)} °C" if values else ""
            out.append(f"No event matched: the threshold of {threshold} °C was never crossed{highest}.")
        else:
            out.append("No event matched this trigger's fields yet, so there was nothing for IFTTT to run on.")
    else:
        newest = d.events[0]
        if newest.returned_at:
            out.append(
                f"The newest matching event ({_when(newest.event.occurred_at)}) was returned to IFTTT in the poll of "
                f"{_when(newest.returned_at)}: IFTTT has it. "
                "If the Applet still didn't run, check its activity on IFTTT."
            )
        else:
            waiting = sum(1 for e in d.events if e.returned_at is None)
            out.append(
                f"{waiting} matching event(s), the newest at {_when(newest.event.occurred_at)}, have not been "
                "returned to IFTTT yet: they will be on its next poll."
                + (" A Realtime notification makes it poll now." if d.identity and d.identity.is_live else "")
            )
    return out


def diagnosis_get(
    *,
    identity: str = "",
    user: Any = None,
    trigger_slug: str = "",
    now: datetime | None = None,
) -> Diagnosis | None:
    """Everything support needs to explain one trigger for one user. None if nothing matches."""
    now = now or timezone.now()
    current: TriggerIdentity | None = None
    identities: list[TriggerIdentity] = []
    if identity:
        current = TriggerIdentity.objects.select_related("user").filter(identity=identity).first()
        if current is None:
            return None
        user, trigger_slug = current.user, current.trigger_slug
    if user is None or not trigger_slug:
        return None
    identities = list(
        TriggerIdentity.objects.filter(user=user, trigger_slug=trigger_slug).order_by(
            models.F("deleted_at").desc(nulls_first=True), "-last_polled_at"
        )[:20]
    )
    if current is None and identities:
        current = identities[0]
    spec = registry.triggers.get(trigger_slug)
    d = Diagnosis(user=user, trigger_slug=trigger_slug, spec=spec, identity=current, identities=identities)
    fields = current.fields if current is not None else {}
    if fields.get("device"):
        d.device = Device.objects.filter(owner=user, public_id=fields["device"]).first()
    if current is not None:
        d.polls = list(
            ApiCall.objects.filter(user=user, trigger_identity=current.identity)
            .defer("path", "slug", "duration_ms", "token_fingerprint", "trigger_identity", "user")
            .order_by("-created_at")[:POLLS_SHOWN]
        )
        d.deliveries = realtime_deliveries_for(identity=current)
    if spec is not None and (current is not None or not spec.fields):
        events = list(spec.history(user, fields).select_related("device")[:EVENTS_SHOWN])
        # A poll returns the newest events: its newest id and count say which ones IFTTT was shown.
        position = {event.public_id: index for index, event in enumerate(events)}
        first_returned: dict[str, datetime] = {}
        for poll in reversed(d.polls):
            top = position.get(poll.newest_event_id)
            if top is not None:
                for shown in events[top : top + (poll.items_returned or 0)]:
                    first_returned.setdefault(shown.public_id, poll.created_at)
        d.events = [EventRow(event=e, returned_at=first_returned.get(e.public_id)) for e in events]
    if trigger_slug == "temperature_rises_above" and d.device is not None:
        d.readings = list(
            DeviceEvent.objects.filter(device=d.device, type=EventType.TEMPERATURE).order_by("-occurred_at", "-id")[
                :EVENTS_SHOWN
            ]
        )
    d.connection = ifttt_connection_get(user=user)
    d.refused = list(ApiCall.objects.filter(user=user, status_code=401).order_by("-created_at")[:20])
    d.conclusions = _conclude(d, now)
    times = [e.event.occurred_at for e in d.events] + [p.created_at for p in d.polls] + [now]
    d.window_end = now
    d.window_start = max(min(times), now - timedelta(days=7)) if len(times) > 1 else now - timedelta(days=1)
    if d.window_start >= now - timedelta(hours=1):
        d.window_start = now - timedelta(hours=1)
    return d


# --- Health ---------------------------------------------------------------------------------------


@dataclass
class EndpointHealth:
    endpoint: str
    calls: int
    errors: int
    server_errors: int
    avg_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass
class Health:
    since: datetime
    endpoints: list[EndpointHealth]
    hourly: list[tuple[datetime, int, int]]
    refused_users: list[dict[str, Any]]
    refused_unknown: int
    realtime: dict[str, int] | None
    realtime_failures: list[Delivery] = field(default_factory=list)


def _realtime_summary(since: datetime) -> tuple[dict[str, int] | None, list[Delivery]]:
    model = realtime_delivery_model()
    if model is None:
        return None, []
    names = {f.name for f in model._meta.get_fields()}
    if not {"status", "created_at"} <= names:
        return None, []
    counts = {
        str(row["status"]): row["n"]
        for row in model._default_manager.filter(created_at__gte=since)
        .values("status")
        .annotate(n=Count("pk"))
        .order_by()
    }
    failed = [
        _delivery_row(row)
        for row in model._default_manager.filter(
            created_at__gte=since, status__in=["failed", "dropped", "retrying"]
        ).order_by("-created_at", "-pk")[:20]
    ]
    # Identities marked for a notification that no delivery has claimed yet: the outbox backlog.
    if any(f.name == "notify_pending_since" for f in TriggerIdentity._meta.get_fields()):
        counts["waiting to be claimed (identities)"] = TriggerIdentity.objects.filter(
            notify_pending_since__isnull=False, deleted_at__isnull=True
        ).count()
    return counts, failed


def health_get(*, now: datetime | None = None) -> Health:
    now = now or timezone.now()
    since = now - HEALTH_WINDOW
    recent = ApiCall.objects.filter(created_at__gte=since)
    endpoints = [
        EndpointHealth(
            endpoint=row["endpoint"],
            calls=row["calls"],
            errors=row["errors"],
            server_errors=row["server_errors"],
            avg_ms=row["avg_ms"] or 0.0,
        )
        for row in recent.values("endpoint")
        .annotate(
            calls=Count("pk"),
            errors=Count("pk", filter=Q(status_code__gte=400)),
            server_errors=Count("pk", filter=Q(status_code__gte=500)),
            avg_ms=Avg("duration_ms"),
        )
        .order_by("-calls")
    ]
    by_hour = {
        row["hour"]: (row["calls"], row["errors"])
        for row in recent.annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(calls=Count("pk"), errors=Count("pk", filter=Q(status_code__gte=400)))
        .order_by()
    }
    start = since.replace(minute=0, second=0, microsecond=0)
    hourly = []
    for i in range(25):
        hour = start + timedelta(hours=i)
        calls, errors = by_hour.get(hour, (0, 0))
        hourly.append((hour, calls, errors))
    refused = ApiCall.objects.filter(created_at__gte=since, status_code=401)
    refused_users = list(
        refused.filter(user__isnull=False)
        .values("user", "user__email", "user__username")
        .annotate(calls=Count("pk"), last=Max("created_at"))
        .order_by("-last")[:50]
    )
    realtime, failures = _realtime_summary(since)
    return Health(
        since=since,
        endpoints=endpoints,
        hourly=hourly,
        refused_users=refused_users,
        refused_unknown=refused.filter(user__isnull=True).count(),
        realtime=realtime,
        realtime_failures=failures,
    )
