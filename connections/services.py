"""Writes for connections: webhook deliveries, users' connection state, fired triggers, script runs."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import metrics
from core.queueing import task_enqueue, task_enqueue_on_commit

from .client import ConnectClient, ConnectUnreachable
from .models import (
    Connection,
    DeliveryStatus,
    FiredTrigger,
    ScriptRun,
    ScriptState,
    UserConnection,
    UserConnectionStatus,
    WebhookDelivery,
)
from .runtime.local import Answer, recording_handler, script_setup
from .sandbox import CallHandler, CallReply, ScriptResult, script_execute
from .timezones import zone_resolve

logger = logging.getLogger(__name__)

CONNECTION_EVENTS = ("enabled", "updated", "disabled")


@dataclass
class WebhookInput:
    """A webhook body, checked by the view: what the services rely on."""

    type: str
    event: str
    connection_id: str
    user: Any
    user_timezone: str
    sent_at: datetime | None
    payload: dict[str, Any]
    trigger_id: str = ""
    feature_id: str = ""
    user_feature_id: str = ""
    user_feature_trigger_id: str = ""
    ingredients: dict[str, Any] = field(default_factory=dict)
    event_at: datetime | None = None


def ms_to_datetime(value: Any) -> datetime | None:
    """IFTTT's millisecond timestamps (numbers, or strings of digits in event_data) as aware datetimes."""
    if value is None or isinstance(value, bool):
        return None
    try:
        millis = float(value)
    except (TypeError, ValueError):
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def payload_key(kind: str, event: str, payload: dict[str, Any]) -> str:
    identity = {
        "type": kind,
        "event": event,
        "sent_at": payload.get("sent_at"),
        "data": payload.get("data"),
        "event_data": payload.get("event_data"),
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def webhook_delivery_receive(
    *, kind: str, event: str, payload: dict[str, Any], request_id: str, webhook: WebhookInput | None
) -> tuple[WebhookDelivery, bool]:
    """Store a delivery and queue its processing; a repeat (same X-Request-ID or same payload) is a no-op.

    Returns the delivery and whether it was new. `webhook` is None for event types we do not know:
    those are kept (for support) but not processed.
    """
    request_id = request_id[:64]
    key = payload_key(kind, event, payload)
    existing = _delivery_existing(request_id, key)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                request_id=request_id,
                payload_key=key,
                type=kind[:50],
                event=event[:50],
                sent_at=ms_to_datetime(payload.get("sent_at")),
                payload=payload,
                user=webhook.user if webhook else None,
                status=DeliveryStatus.RECEIVED if webhook else DeliveryStatus.IGNORED,
                message="" if webhook else f"No handler for {kind}/{event}; kept for reference.",
            )
            if webhook is not None:
                from .tasks import webhook_delivery_process_task

                task_enqueue_on_commit(webhook_delivery_process_task, kwargs={"delivery_id": delivery.pk})
    except IntegrityError:
        # Two copies raced; the other one was stored first.
        existing = _delivery_existing(request_id, key)
        if existing is None:
            raise
        return existing, False
    return delivery, True


def _delivery_existing(request_id: str, key: str) -> WebhookDelivery | None:
    delivery = WebhookDelivery.objects.filter(payload_key=key).first()
    if delivery is None and request_id:
        delivery = WebhookDelivery.objects.filter(request_id=request_id).first()
    return delivery


def webhook_delivery_process(*, delivery_id: int) -> WebhookDelivery | None:
    """Apply one stored delivery. Only the caller that moves it out of `received` does the work."""
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.RECEIVED).update(
        status=DeliveryStatus.PROCESSING
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("user").get(pk=delivery_id)
    try:
        with transaction.atomic():
            _delivery_apply(delivery)
            delivery.status = DeliveryStatus.PROCESSED
            delivery.processed_at = timezone.now()
            delivery.save(update_fields=["status", "processed_at", "connection", "message"])
    except Exception as exc:
        logger.exception("Connect webhook %s (%s/%s) failed", delivery.public_id, delivery.type, delivery.event)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED, message=f"{type(exc).__name__}: {exc}", processed_at=timezone.now()
        )
    return delivery


def _delivery_apply(delivery: WebhookDelivery) -> None:
    from .webhooks import webhook_input_parse  # the same checks the view made, on the stored body

    webhook = webhook_input_parse(delivery.type, delivery.event, delivery.payload, user=delivery.user)
    connection, _ = Connection.objects.get_or_create(connection_id=webhook.connection_id)
    delivery.connection = connection
    user_connection = user_connection_apply(connection=connection, webhook=webhook)
    if webhook.type == "trigger_subscription":
        fired = fired_trigger_record(delivery=delivery, user_connection=user_connection, webhook=webhook)
        delivery.message = f"Trigger {fired.trigger_id} recorded" + (
            "; the connection script is queued." if fired.script_state == ScriptState.PENDING else "."
        )
    else:
        delivery.message = f"Connection {user_connection.get_status_display().lower()} for the user."


def user_connection_apply(*, connection: Connection, webhook: WebhookInput) -> UserConnection:
    """Bring the user's connection state up to date with one webhook; an older event never undoes a newer one."""
    zone = zone_resolve(webhook.user_timezone)
    user_connection, _ = UserConnection.objects.select_for_update().get_or_create(
        connection=connection,
        user=webhook.user,
        defaults={"status": UserConnectionStatus.ENABLED, "timezone": zone.key, "timezone_name": webhook.user_timezone},
    )
    when = webhook.event_at or webhook.sent_at or timezone.now()
    fields: set[str] = set()
    newest = user_connection.state_changed_at is None or when >= user_connection.state_changed_at
    if webhook.type == "connection" and newest:
        if webhook.event == "disabled":
            user_connection.status = UserConnectionStatus.DISABLED
            user_connection.disabled_at = when
            fields |= {"status", "disabled_at"}
        else:
            user_connection.status = UserConnectionStatus.ENABLED
            fields.add("status")
            if webhook.event == "enabled":
                user_connection.enabled_at = when
                fields.add("enabled_at")
        user_connection.state_changed_at = when
        fields.add("state_changed_at")
    if newest and webhook.user_timezone:
        user_connection.timezone = zone.key
        user_connection.timezone_name = webhook.user_timezone
        fields |= {"timezone", "timezone_name"}
    if webhook.user_feature_id and webhook.user_feature_id not in user_connection.user_feature_ids:
        user_connection.user_feature_ids = [*user_connection.user_feature_ids, webhook.user_feature_id]
        fields.add("user_feature_ids")
    if fields:
        user_connection.save(update_fields=[*sorted(fields), "updated_at"])
    return user_connection


def fired_trigger_record(
    *, delivery: WebhookDelivery, user_connection: UserConnection, webhook: WebhookInput
) -> FiredTrigger:
    connection = user_connection.connection
    run_script = connection.has_script
    fired = FiredTrigger.objects.create(
        delivery=delivery,
        user_connection=user_connection,
        trigger_id=webhook.trigger_id,
        feature_id=webhook.feature_id,
        user_feature_id=webhook.user_feature_id,
        user_feature_trigger_id=webhook.user_feature_trigger_id,
        ingredients=webhook.ingredients,
        fired_at=webhook.sent_at or timezone.now(),
        script_state=ScriptState.PENDING if run_script else ScriptState.NONE,
    )
    if run_script:
        from .tasks import fired_trigger_script_run_task

        task_enqueue_on_commit(fired_trigger_script_run_task, kwargs={"fired_trigger_id": fired.pk})
    return fired


# --- scripts ------------------------------------------------------------------------------------


def connect_call_handler(*, connection_id: str, user_id: str, deadline: float) -> CallHandler:
    """Send a script's runAction/performQuery calls to the Connect API for this user and connection."""
    client = ConnectClient()

    def handle(kind: str, call_id: str, body: dict[str, Any]) -> CallReply:
        # A script acts for the user whose event it handles, whatever user_id it may have written.
        request_body = {**body, "user_id": user_id}
        verb = "actions/{}/run" if kind == "action" else "queries/{}/perform"
        path = f"/v2/connections/{ConnectClient._segment(connection_id)}/" + verb.format(
            ConnectClient._segment(call_id)
        )
        try:
            response = client.request("POST", path, body=request_body, deadline=deadline)
        except ConnectUnreachable as exc:
            return CallReply(error=exc.message)
        return CallReply(status_code=response.status_code, body=response.body)

    return handle


def _run_record(
    *,
    connection: Connection,
    result: ScriptResult,
    script: str,
    trigger_id: str,
    ingredients: dict[str, Any],
    user: Any,
    fired: FiredTrigger | None,
    is_test: bool,
) -> ScriptRun:
    calls = [{**call.as_dict(), "sent": not is_test} for call in result.calls]
    logs = list(result.logs)
    if result.logs_dropped > 0:
        logs.append({"level": "warn", "message": f"… {result.logs_dropped} more console lines were not kept."})
    return ScriptRun.objects.create(
        connection=connection,
        fired_trigger=fired,
        user=user,
        is_test=is_test,
        script=script,
        trigger_id=trigger_id,
        ingredients=ingredients,
        outcome=result.outcome,
        error=result.error,
        logs=logs,
        calls=calls,
        duration_ms=round(result.duration_ms, 3),
        overhead_ms=round(result.overhead_ms, 3),
    )


def fired_trigger_script_run(*, fired_trigger_id: int) -> ScriptRun | None:
    """Run the connection's script for one fired trigger. Only the caller that claims the event runs it."""
    claimed = FiredTrigger.objects.filter(pk=fired_trigger_id, script_state=ScriptState.PENDING).update(
        script_state=ScriptState.RUNNING
    )
    if not claimed:
        return None
    fired = FiredTrigger.objects.select_related("user_connection__connection", "user_connection__user").get(
        pk=fired_trigger_id
    )
    user_connection = fired.user_connection
    connection = user_connection.connection
    user = user_connection.user
    timeout_s = float(settings.CONNECTIONS_SCRIPT_TIMEOUT)
    setup = script_setup(
        script=connection.script,
        trigger_id=fired.trigger_id,
        ingredients=fired.ingredients,
        service_user_id=user.public_id,
        feature_name=fired.feature_id,
        user_feature_id=fired.user_feature_id,
        configuration=connection.configuration,
        zone_name=user_connection.timezone,
    )
    handler = connect_call_handler(
        connection_id=connection.connection_id, user_id=user.public_id, deadline=time.monotonic() + timeout_s
    )
    result = script_execute(
        setup=setup, handler=handler, timeout_s=timeout_s, memory_mb=settings.CONNECTIONS_SCRIPT_MEMORY_MB
    )
    metrics.script_runs.labels(outcome=result.outcome).inc()
    metrics.script_seconds.observe(result.duration_ms / 1000)
    with transaction.atomic():
        run = _run_record(
            connection=connection,
            result=result,
            script=connection.script,
            trigger_id=fired.trigger_id,
            ingredients=fired.ingredients,
            user=user,
            fired=fired,
            is_test=False,
        )
        FiredTrigger.objects.filter(pk=fired.pk).update(script_state=ScriptState.DONE)
    if result.outcome != "succeeded":
        logger.warning("Connection %s script %s: %s", connection.connection_id, result.outcome, result.error[:500])
    return run


def script_test_run(
    *,
    connection: Connection,
    script: str,
    trigger_id: str,
    ingredients: dict[str, Any],
    answers: dict[str, list[Answer]] | None = None,
    user: Any = None,
    zone_name: str = "",
    user_feature_id: str = "",
    feature_name: str = "",
    now: datetime | None = None,
) -> ScriptRun:
    """Run `script` on sample ingredients, recording the calls it would make without sending them.

    Each call gets the answer chosen for its id (`answers`), or a plain success."""
    setup = script_setup(
        script=script,
        trigger_id=trigger_id,
        ingredients=ingredients,
        service_user_id=user.public_id if user is not None else "test-user",
        feature_name=feature_name,
        user_feature_id=user_feature_id,
        configuration=connection.configuration,
        zone_name=zone_name,
        now=now,
    )
    result = script_execute(
        setup=setup,
        handler=recording_handler(answers or {}),
        timeout_s=float(settings.CONNECTIONS_SCRIPT_TIMEOUT),
        memory_mb=settings.CONNECTIONS_SCRIPT_MEMORY_MB,
    )
    return _run_record(
        connection=connection,
        result=result,
        script=script,
        trigger_id=trigger_id,
        ingredients=ingredients,
        user=user,
        fired=None,
        is_test=True,
    )


# --- recovery ---------------------------------------------------------------------------------------

# Work the broker never delivered (it was down when the webhook arrived) is re-sent after this long...
SWEEP_RESEND_AFTER = timedelta(seconds=30)
# ...and work a worker claimed and never finished (it died) is reclaimed after this long: well past
# the tasks' own time limits, so a slow run in progress is never taken from its worker.
SWEEP_STUCK_AFTER = timedelta(minutes=10)
SWEEP_BATCH = 500


def connections_work_sweep() -> dict[str, int]:
    """Re-enqueue Connect work that a broker or worker outage left behind. Returns what it did.

    A reclaimed script run may already have made some of its calls before its worker died; running
    it again is how nothing is lost (at least once), as IFTTT itself retries actions.
    """
    from .tasks import fired_trigger_script_run_task, webhook_delivery_process_task

    now = timezone.now()
    reclaimed_deliveries = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PROCESSING, received_at__lt=now - SWEEP_STUCK_AFTER
    ).update(status=DeliveryStatus.RECEIVED)
    reclaimed_runs = FiredTrigger.objects.filter(
        script_state=ScriptState.RUNNING, delivery__received_at__lt=now - SWEEP_STUCK_AFTER
    ).update(script_state=ScriptState.PENDING)
    deliveries = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED, received_at__lt=now - SWEEP_RESEND_AFTER)
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    runs = list(
        FiredTrigger.objects.filter(
            script_state=ScriptState.PENDING, delivery__received_at__lt=now - SWEEP_RESEND_AFTER
        )
        .order_by("delivery__received_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for pk in deliveries:
        task_enqueue(webhook_delivery_process_task, kwargs={"delivery_id": pk})
    for pk in runs:
        task_enqueue(fired_trigger_script_run_task, kwargs={"fired_trigger_id": pk})
    return {
        "reclaimed_deliveries": reclaimed_deliveries,
        "reclaimed_script_runs": reclaimed_runs,
        "deliveries_enqueued": len(deliveries),
        "script_runs_enqueued": len(runs),
    }
