"""Writes for the support console: the staff actions, the "Support" group, pruning the API log.

Every staff action goes through one function here and is recorded in the admin log (LogEntry),
so "who did what to this account, and when" is on each object's History page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from accounts.formatting import when
from actions.models import ActionRun
from core.errors import ServiceError, Skip
from devices.models import SWITCHABLE_KINDS, Device, DeviceEvent, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_events_record, device_set_online
from protocol.access import ifttt_access_revoke
from protocol.models import DisconnectedBy
from protocol.registry import registry
from triggers.models import TriggerIdentity
from triggers.services import realtime_notification_resend

logger = logging.getLogger(__name__)

SUPPORT_GROUP = "Support"
SUPPORT_ACTION_PERMISSIONS = (
    "view_console",
    "disconnect_ifttt",
    "resend_realtime",
    "fire_test_event",
    "replay_action_run",
    "set_device_online",
)


class ActionRefused(ServiceError):
    """A staff action that cannot be done to this object; the message says why."""

    code = "action_refused"


def support_action_log(*, actor: Any, obj: models.Model, message: str) -> LogEntry:
    """Record a staff action in the admin log, on the object it changed."""
    return LogEntry.objects.create(
        user_id=actor.pk,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=CHANGE,
        change_message=message,
    )


# --- Staff actions --------------------------------------------------------------------------------


@transaction.atomic
def support_ifttt_disconnect(*, actor: Any, user: Any) -> int:
    """Revoke IFTTT's access to `user`'s account. Returns how many access tokens were live."""
    from oauth2_provider.models import AccessToken

    count = AccessToken.objects.filter(user=user, application__client_id=settings.IFTTT_CLIENT_ID).count()
    # The same revocation as the user's own "Disconnect" on their account page.
    ifttt_access_revoke(user=user, by=DisconnectedBy.SUPPORT)
    support_action_log(
        actor=actor, obj=user, message=f"Disconnected IFTTT: revoked {count} access token(s) from support."
    )
    return count


@transaction.atomic
def support_realtime_resend(*, actor: Any, identity: TriggerIdentity) -> None:
    """Notify IFTTT again that `identity` has news, so it polls now."""
    if not identity.is_live:
        raise ActionRefused(
            f"IFTTT deleted trigger identity {identity.identity} on {when(identity.deleted_at)}; "
            "it is not polled any more, so there is nothing to notify."
        )
    if not settings.IFTTT_REALTIME_URL:
        raise ActionRefused("Realtime notifications are turned off here (IFTTT_REALTIME_URL is empty).")
    realtime_notification_resend(identity=identity)
    support_action_log(actor=actor, obj=identity, message="Resent a Realtime notification.")


def _test_event_for(device: Device) -> NewEvent:
    data = {"support_test": True}
    if device.kind == DeviceKind.MOTION_SENSOR:
        return NewEvent(type=EventType.MOTION, data=data)
    if device.kind in SWITCHABLE_KINDS:
        # A real state change, so the device's state and its history keep agreeing.
        return NewEvent(type=EventType.SWITCHED_OFF if device.is_on else EventType.SWITCHED_ON, data=data)
    raise ActionRefused(f"{device.name} is a {device.get_kind_display()}: there is no test event for that kind.")


@transaction.atomic
def support_test_event_fire(*, actor: Any, device: Device) -> DeviceEvent:
    """Record a test event on `device` (motion, or a switch), as if the device had reported it."""
    (event,) = device_events_record(device=device, events=[_test_event_for(device)], source=EventSource.ADMIN)
    support_action_log(
        actor=actor, obj=device, message=f"Fired a test event: {event.get_type_display()} ({event.public_id})."
    )
    return event


def support_action_run_replay(*, actor: Any, run: ActionRun) -> ActionRun:
    """Run the action of `run` again with the same fields; returns the new run (succeeded or skipped)."""
    from actions.services import action_run

    spec = registry.actions.get(run.action_slug)
    if spec is None:
        raise ActionRefused(f"The action “{run.action_slug}” is no longer in the catalog, so it cannot be replayed.")
    try:
        replay = action_run(
            spec=spec,
            user=run.user,
            fields=run.fields,
            request_id=f"replay-{run.public_id}"[:64],
            ifttt_source={"replay_of": run.public_id},
        )
    except Skip:
        replay = ActionRun.objects.filter(user=run.user, request_id=f"replay-{run.public_id}"[:64]).first()  # type: ignore[assignment]
        if replay is None:  # pragma: no cover - action_run always records a skip
            raise
    support_action_log(
        actor=actor, obj=run, message=f"Replayed as run {replay.public_id}: {replay.get_status_display()}."
    )
    return replay


@transaction.atomic
def support_device_set_online(*, actor: Any, device: Device, online: bool) -> None:
    device_set_online(device=device, online=online)
    support_action_log(actor=actor, obj=device, message=f"Marked {'online' if online else 'offline'}.")


# --- The Support group ----------------------------------------------------------------------------


def support_group_ensure(*, using: str = "default") -> Group:
    """Create or update the "Support" group: view everything, plus the staff actions. Idempotent.

    No add, change or delete permission: support changes data only through the staff actions.
    """
    group, _ = Group.objects.using(using).get_or_create(name=SUPPORT_GROUP)
    permissions = Permission.objects.using(using)
    # Sessions hold login keys: nothing support needs to read.
    views = permissions.filter(codename__startswith="view_").exclude(content_type__app_label="sessions")
    wanted = views | permissions.filter(content_type__app_label="support", codename__in=SUPPORT_ACTION_PERMISSIONS)
    group.permissions.set(wanted)
    return group
