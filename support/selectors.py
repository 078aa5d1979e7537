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
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.formatting import when
from accounts.models import User
from accounts.selectors import FieldValue, RunRow, account_recent_runs, fields_readable
from actions.models import ActionRun, ActionRunStatus
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
    fields: list[FieldValue] = field(default_factory=list)

    @property
    def trigger_name(self) -> str:
        return self.spec.label if self.spec is not None else self.trigger_slug


def _when(at: datetime | None) -> str:
    return when(at)


def _device_chosen(d: Diagnosis) -> bool:
    """The identity's fields name a device (so whether it still exists is a question)."""
    return d.identity is not None and bool(d.identity.fields.get("device"))


def _conclude(d: Diagnosis, now: datetime) -> list[str]:
    """What support tells the person, one sentence per finding, each true for its case."""
    out: list[str] = []
    conn = d.connection
    if d.identity is None:
        out.append(
            f"IFTTT has never polled the trigger “{d.trigger_name}” for this person: no Applet with it is on, "
            "or IFTTT could not reach us when it was turned on. Ask them to turn the Applet off and on."
        )
    elif d.identity.deleted_at:
        out.append(
            f"IFTTT deleted this trigger identity on {_when(d.identity.deleted_at)}: the Applet was turned off "
            "or edited, so it is no longer polled or notified."
        )
    if conn is not None:
        if conn.refused_since:
            out.append(
                f"IFTTT's calls for this person have been refused (401) since {_when(conn.refused_since)} "
                f"({_calls(conn.refused_count)}): its token no longer works. "
                "They must reconnect the service on IFTTT."
            )
        if not conn.tokens:
            if conn.disconnected_at:
                out.append(f"IFTTT's access was revoked on {_when(conn.disconnected_at)}, by {conn.disconnected_by}.")
            else:
                out.append("This person has no IFTTT token: IFTTT is not connected to their account.")
    if d.identity is None:
        # Nothing below applies to a trigger IFTTT never asked about: there are no fields to check.
        return out
    if d.identity.deleted_at is None:
        last = d.identity.last_polled_at
        if last is None:
            out.append("IFTTT has not polled this identity since it was created.")
        elif now - last > POLL_EXPECTED_WITHIN:
            out.append(f"IFTTT has not polled this identity since {_when(last)}.")
    if _device_chosen(d) and d.device is None:
        out.append("The device chosen in the Applet is no longer in this account: the Applet must be edited.")
        return out
    if d.device is not None and not d.device.online:
        out.append(f"{d.device.name} is marked offline, so it may not be reporting events.")
    if not d.events:
        if d.trigger_slug == "temperature_rises_above":
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
                f"{_count(waiting, 'matching event has', 'matching events have')} not been returned to IFTTT yet "
                f"(the newest at {_when(newest.event.occurred_at)}): they will be on its next poll."
                + (" A Realtime notification makes it poll now." if d.identity.is_live else "")
            )
    return out


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _calls(n: int) -> str:
    return _count(n, "call", "calls")


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
    d.fields = fields_readable(spec=spec, user=user, fields=fields) if current is not None else []
    d.conclusions = _conclude(d, now)
    times = [e.event.occurred_at for e in d.events] + [p.created_at for p in d.polls] + [now]
    d.window_end = now
    d.window_start = max(min(times), now - timedelta(days=7)) if len(times) > 1 else now - timedelta(days=1)
    if d.window_start >= now - timedelta(hours=1):
        d.window_start = now - timedelta(hours=1)
    return d


@dataclass
class PersonDiagnosis:
    """Every Applet identity of one person, each with its own conclusions, and what their actions did."""

    user: Any
    applets: list[Diagnosis]
    connection: Connection
    runs: list[RunRow]
    conclusions: list[str]  # about the person as a whole (no Applets, no connection)


APPLETS_SHOWN = 30


def person_diagnose(*, user: Any, now: datetime | None = None) -> PersonDiagnosis:
    """From a person alone: each trigger identity IFTTT polled for them (live ones first), diagnosed."""
    now = now or timezone.now()
    identities = list(
        TriggerIdentity.objects.filter(user=user)
        .order_by(models.F("deleted_at").desc(nulls_first=True), models.F("last_polled_at").desc(nulls_last=True))
        .values_list("identity", flat=True)[:APPLETS_SHOWN]
    )
    applets = [d for d in (diagnosis_get(identity=i, now=now) for i in identities) if d is not None]
    connection = ifttt_connection_get(user=user)
    conclusions: list[str] = []
    if not applets:
        conclusions.append(
            "IFTTT has never polled a trigger for this person: none of their Applets uses one of this service's "
            "triggers, or IFTTT could not reach us when they turned one on."
        )
        if not connection.tokens:
            conclusions.append(
                f"IFTTT's access was revoked on {_when(connection.disconnected_at)}, by {connection.disconnected_by}."
                if connection.disconnected_at
                else "This person has no IFTTT token: IFTTT is not connected to their account."
            )
    runs = account_recent_runs(user=user)
    return PersonDiagnosis(user=user, applets=applets, connection=connection, runs=runs, conclusions=conclusions)


# --- One person's timeline: everything that happened to their Applets, newest first ----------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # event, poll, realtime, run, failure
    what: str
    href: str

    @property
    def kind_label(self) -> str:
        return TIMELINE_KINDS.get(self.kind, self.kind)


TIMELINE_KINDS = {
    "event": "Device event",
    "poll": "IFTTT call",
    "realtime": "Realtime",
    "run": "Action run",
    "failure": "Failure",
}


def _admin_url(obj: models.Model) -> str:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


TIMELINE_EACH = 30


def user_timeline(*, user: Any, limit: int = 60) -> list[TimelineEntry]:
    """Device events, IFTTT's calls, Realtime notifications and action runs of one person, merged.

    Each source is read newest first through its (user, time) index, at most TIMELINE_EACH rows.
    """
    entries: list[TimelineEntry] = []
    for event in DeviceEvent.objects.filter(owner=user).select_related("device").order_by("-id")[:TIMELINE_EACH]:
        value = f" ({event.value})" if event.value not in (None, "") else ""
        entries.append(
            TimelineEntry(
                event.occurred_at,
                "event",
                f"{event.device.name}: {event.get_type_display()}{value}, from {event.get_source_display()}",
                _admin_url(event),
            )
        )
    for call in ApiCall.objects.filter(user=user).order_by("-created_at", "-id")[:TIMELINE_EACH]:
        what = f"IFTTT {call.method} {call.endpoint}{f' {call.slug}' if call.slug else ''} → {call.status_code}"
        if call.items_returned is not None:
            what += f", {_count(call.items_returned, 'item', 'items')} returned"
        if call.error_message:
            what += f": {call.error_message}"
        kind = "failure" if call.status_code >= 400 else "poll"
        entries.append(TimelineEntry(call.created_at, kind, what, _admin_url(call)))
    delivery = realtime_delivery_model()
    if delivery is not None and any(f.name == "trigger_identities" for f in delivery._meta.get_fields()):
        rows = (
            delivery._default_manager.filter(trigger_identities__user=user)
            .distinct()
            .order_by("-created_at", "-id")[:TIMELINE_EACH]
        )
        for row in rows:
            status = str(getattr(row, "get_status_display", lambda: "")())
            detail = _delivery_row(row).detail
            failed = getattr(row, "status", "") in ("failed", "dropped", "retrying")
            entries.append(
                TimelineEntry(
                    row.created_at,  # type: ignore[attr-defined]
                    "failure" if failed else "realtime",
                    f"Realtime notification to IFTTT: {status}" + (f" ({detail})" if detail else ""),
                    _admin_url(row),
                )
            )
    for run in ActionRun.objects.filter(user=user).order_by("-created_at", "-id")[:TIMELINE_EACH]:
        spec = registry.actions.get(run.action_slug)
        what = f"Action “{spec.label if spec else run.action_slug}”: {run.get_status_display()}"
        if run.message:
            what += f", {run.message}"
        kind = "run" if run.status == ActionRunStatus.SUCCEEDED else "failure"
        entries.append(TimelineEntry(run.created_at, kind, what, _admin_url(run)))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


# --- Health ---------------------------------------------------------------------------------------


@dataclass
class EndpointHealth:
    """One endpoint's day. `refused` (4xx) is a caller asking for something it may not have or that is
    not there (an expired token, options of a text field): the service answered correctly. `failed`
    (5xx) is the service's own fault, and only that is the error rate."""

    endpoint: str
    calls: int
    refused: int
    failed: int
    avg_ms: float

    @property
    def error_rate(self) -> float:
        return self.failed / self.calls if self.calls else 0.0


@dataclass
class Health:
    since: datetime
    endpoints: list[EndpointHealth]
    hourly: list[tuple[datetime, dict[str, int]]]  # per hour: ok, refused (4xx), failed (5xx)
    refused_users: list[dict[str, Any]]
    refused_unknown: int  # bearer tokens we cannot tie to anyone (never seen working)
    refused_service_key: int  # IFTTT-Service-Key missing or wrong: a configuration problem, not a person's
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
            refused=row["refused"],
            failed=row["failed"],
            avg_ms=row["avg_ms"] or 0.0,
        )
        for row in recent.values("endpoint")
        .annotate(
            calls=Count("pk"),
            refused=Count("pk", filter=Q(status_code__gte=400, status_code__lt=500)),
            failed=Count("pk", filter=Q(status_code__gte=500)),
            avg_ms=Avg("duration_ms"),
        )
        .order_by("-calls")
    ]
    by_hour = {
        row["hour"]: {
            "ok": row["calls"] - row["refused"] - row["failed"],
            "refused": row["refused"],
            "failed": row["failed"],
        }
        for row in recent.annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(
            calls=Count("pk"),
            refused=Count("pk", filter=Q(status_code__gte=400, status_code__lt=500)),
            failed=Count("pk", filter=Q(status_code__gte=500)),
        )
        .order_by()
    }
    start = since.replace(minute=0, second=0, microsecond=0)
    hourly = []
    for i in range(25):
        hour = start + timedelta(hours=i)
        hourly.append((hour, by_hour.get(hour, {"ok": 0, "refused": 0, "failed": 0})))
    refused = ApiCall.objects.filter(created_at__gte=since, status_code=401)
    # The service key guards the calls without a person (status, test/setup): refusing it says nothing
    # about anyone's token. protocol.auth words those refusals with the header's name.
    service_key = Q(error_message__icontains="Service-Key") | Q(error_message__icontains="Channel-Key")
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
        refused_unknown=refused.filter(user__isnull=True).exclude(service_key).count(),
        refused_service_key=refused.filter(service_key).count(),
        realtime=realtime,
        realtime_failures=failures,
    )
