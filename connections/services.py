"""Writes for connections: webhook deliveries, users' connection state, fired triggers, script runs."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core import metrics
from core.queueing import task_enqueue, task_enqueue_on_commit

from .client import ConnectClient, ConnectInvalidParameters, ConnectUnreachable, QueryPage
from .configuration import FieldRuleError, fields_apply
from .inputs import CONNECTION_EVENTS, WebhookInput, ms_to_datetime
from .models import (
    Connection,
    DeliveryStatus,
    FiredTrigger,
    ScriptRun,
    ScriptRunOutcome,
    ScriptState,
    StepKind,
    UserConnection,
    UserConnectionStatus,
    WebhookDelivery,
)
from .runtime.local import Answer, recording_handler, script_setup
from .sandbox import CallHandler, CallReply, ScriptResult, script_execute
from .timezones import zone_resolve
from .webhooks import webhook_input_parse

logger = logging.getLogger(__name__)

__all__ = ["CONNECTION_EVENTS", "WebhookInput", "ms_to_datetime"]

# Tasks are queued by name: importing the tasks module here would import these services back.
DELIVERY_TASK = "connections.webhook_delivery_process"
SCRIPT_TASK = "connections.fired_trigger_script_run"


# --- leases -------------------------------------------------------------------------------------------


def script_task_limits() -> tuple[int, int]:
    """The script task's soft and hard time limits (s): well above the script's own limit.

    The soft limit ends a run that is stuck outside the script (a Connect call that will not return);
    the hard one kills the worker process if even that does not stop it.
    """
    soft = max(1, math.ceil(float(settings.CONNECTIONS_SCRIPT_TASK_SOFT_LIMIT)))
    return soft, soft + 10


def script_lease() -> timedelta:
    """How long a worker owns a claimed script run: past the hard time limit, so no live run loses it."""
    return timedelta(seconds=script_task_limits()[1] + 30.0)


def delivery_lease() -> timedelta:
    """How long a worker owns a claimed webhook delivery: past the default task time limit."""
    return timedelta(seconds=float(settings.CELERY_TASK_TIME_LIMIT) + 30.0)


def payload_key(kind: str, event: str, payload: dict[str, Any]) -> str:
    # The whole body: two webhooks that differ anywhere (a type we do not know may carry its news
    # outside data and event_data) are two deliveries; only a repeat of the same body is a duplicate.
    identity = {"type": kind, "event": event, "payload": payload}
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
                task_enqueue_on_commit(DELIVERY_TASK, kwargs={"delivery_id": delivery.pk})
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
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.RECEIVED).update(
        status=DeliveryStatus.PROCESSING, claimed_at=now, lease_expires_at=now + delivery_lease()
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("user").get(pk=delivery_id)
    try:
        with transaction.atomic():
            _delivery_apply(delivery)
            delivery.status = DeliveryStatus.PROCESSED
            delivery.processed_at = timezone.now()
            delivery.lease_expires_at = None
            delivery.save(update_fields=["status", "processed_at", "connection", "message", "lease_expires_at"])
    except Exception as exc:
        logger.exception("Connect webhook %s (%s/%s) failed", delivery.public_id, delivery.type, delivery.event)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED,
            message=f"{type(exc).__name__}: {exc}",
            processed_at=timezone.now(),
            lease_expires_at=None,
        )
    return delivery


def _delivery_apply(delivery: WebhookDelivery) -> None:
    # The same checks the view made, on the stored body.
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
        task_enqueue_on_commit(SCRIPT_TASK, kwargs={"fired_trigger_id": fired.pk})
    return fired


# --- scripts ------------------------------------------------------------------------------------


class ScriptRunStopped(BaseException):
    """The task's time limit fell during a Connect call. A BaseException, so that no handler on the way
    (the sandbox guards its calls against ordinary errors) mistakes it for a failed call and lets the
    script carry on: the run is over."""


def _call_body(
    *, connection: Connection | None, kind: str, call_id: str, body: dict[str, Any], feature_id: str
) -> dict[str, Any]:
    """The body a script's call is sent with: the connection's field rules applied (FieldRuleError)."""
    if connection is None:
        return dict(body)
    overrides = body.get("fields")
    if overrides is not None and not isinstance(overrides, dict):
        raise FieldRuleError(call_id, {"fields": "must be an object of field values."})
    fields = fields_apply(
        connection=connection,
        kind=StepKind.ACTION if kind == "action" else StepKind.QUERY,
        step_id=call_id,
        feature_id=feature_id,
        overrides=overrides,
    )
    sent = {key: value for key, value in body.items() if key != "fields"}
    if fields:
        sent["fields"] = fields
    return sent


def connect_call_handler(
    *,
    connection_id: str,
    user_id: str,
    deadline: float,
    connection: Connection | None = None,
    feature_id: str = "",
    user_feature_id: str = "",
) -> CallHandler:
    """Send a script's runAction/performQuery calls to the Connect API for this user and connection.

    Calls run in the context of the fired trigger's feature (its user feature, unless the script names
    one) with the connection's field rules applied. An action that may have reached IFTTT is never
    sent twice: a timeout rejects the script's Promise and says so; a 5xx is the script's to read.
    """
    client = ConnectClient()

    def handle(kind: str, call_id: str, body: dict[str, Any]) -> CallReply:
        try:
            sent = _call_body(connection=connection, kind=kind, call_id=call_id, body=body, feature_id=feature_id)
        except FieldRuleError as exc:
            return CallReply(status_code=422, body=exc.as_ifttt_error())
        # A script acts for the user whose event it handles, whatever user_id it may have written.
        sent["user_id"] = user_id
        if user_feature_id:
            sent.setdefault("user_feature_id", user_feature_id)
        try:
            if kind == "action":
                response = client.action_run_request(
                    connection_id=connection_id, action_id=call_id, body=sent, deadline=deadline
                )
            else:
                response = client.query_perform_request(
                    connection_id=connection_id, query_id=call_id, body=sent, deadline=deadline
                )
        except ConnectUnreachable as exc:
            return CallReply(error=exc.message)
        except SoftTimeLimitExceeded as exc:
            raise ScriptRunStopped(str(exc)) from exc
        return CallReply(status_code=response.status_code, body=response.body)

    return handle


def field_rules_handler(handler: CallHandler, *, connection: Connection, feature_id: str) -> CallHandler:
    """`handler` behind the connection's field rules, as a real run has them: a call whose overrides the
    rules refuse is answered with IFTTT's 422 and never reaches `handler`."""

    def handle(kind: str, call_id: str, body: dict[str, Any]) -> CallReply:
        try:
            sent = _call_body(connection=connection, kind=kind, call_id=call_id, body=body, feature_id=feature_id)
        except FieldRuleError as exc:
            return CallReply(status_code=422, body=exc.as_ifttt_error())
        return handler(kind, call_id, sent)

    return handle


# --- the backend's own calls ---------------------------------------------------------------------------


def _rules_applied(
    *, connection: Connection, kind: str, step_id: str, feature_id: str, fields: dict[str, Any] | None
) -> dict[str, Any] | None:
    try:
        return fields_apply(connection=connection, kind=kind, step_id=step_id, feature_id=feature_id, overrides=fields)
    except FieldRuleError as exc:
        error = exc.as_ifttt_error()
        raise ConnectInvalidParameters(error["message"], code=error["code"], details=error["details"]) from None


def connection_action_run(
    *,
    connection: Connection,
    user: Any,
    action_id: str,
    fields: dict[str, Any] | None = None,
    feature_id: str = "",
    user_feature_id: str | None = None,
    client: ConnectClient | None = None,
) -> None:
    """Run an action of the connection for a user, its field rules applied (refused overrides raise 422)."""
    sent = _rules_applied(
        connection=connection, kind=StepKind.ACTION, step_id=action_id, feature_id=feature_id, fields=fields
    )
    (client or ConnectClient()).action_run(
        connection_id=connection.connection_id,
        action_id=action_id,
        user_id=user.public_id,
        fields=sent,
        user_feature_id=user_feature_id,
    )


def connection_query_perform(
    *,
    connection: Connection,
    user: Any,
    query_id: str,
    fields: dict[str, Any] | None = None,
    feature_id: str = "",
    user_feature_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    client: ConnectClient | None = None,
) -> QueryPage:
    """One page of a connection's query for a user, its field rules applied."""
    sent = _rules_applied(
        connection=connection, kind=StepKind.QUERY, step_id=query_id, feature_id=feature_id, fields=fields
    )
    return (client or ConnectClient()).query_perform(
        connection_id=connection.connection_id,
        query_id=query_id,
        user_id=user.public_id,
        fields=sent,
        user_feature_id=user_feature_id,
        limit=limit,
        cursor=cursor,
    )


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
    """Run the connection's script for one fired trigger. Only the caller that claims the event runs it.

    The claim is a lease (`claimed_at`, `lease_expires_at`) longer than the task's hard time limit,
    so neither a redelivered message nor the recovery sweep can start the script again while it runs.
    """
    now = timezone.now()
    claimed = FiredTrigger.objects.filter(pk=fired_trigger_id, script_state=ScriptState.PENDING).update(
        script_state=ScriptState.RUNNING, claimed_at=now, lease_expires_at=now + script_lease()
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
        connection_id=connection.connection_id,
        user_id=user.public_id,
        deadline=time.monotonic() + timeout_s,
        connection=connection,
        feature_id=fired.feature_id,
        user_feature_id=fired.user_feature_id,
    )
    result = script_execute(
        setup=setup, handler=handler, timeout_s=timeout_s, memory_mb=settings.CONNECTIONS_SCRIPT_MEMORY_MB
    )
    succeeded = result.outcome == ScriptRunOutcome.SUCCEEDED
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
        # Only while this claim still holds: a run the sweep already declared stopped stays so.
        FiredTrigger.objects.filter(pk=fired.pk, script_state=ScriptState.RUNNING, claimed_at=fired.claimed_at).update(
            script_state=ScriptState.DONE if succeeded else ScriptState.FAILED,
            script_error="" if succeeded else result.error[:2000],
            lease_expires_at=None,
        )
    metrics.script_runs.labels(outcome=result.outcome).inc()
    metrics.script_seconds.observe(result.duration_ms / 1000)
    if not succeeded:
        logger.warning("Connection %s script %s: %s", connection.connection_id, result.outcome, result.error[:500])
    return run


def fired_trigger_script_stopped(*, fired_trigger_id: int, outcome: str, reason: str) -> ScriptRun | None:
    """End a claimed run that was stopped from outside (a time limit, a worker that died) as failed.

    It is never run again: some of its calls may already have reached IFTTT, and running them twice
    is worse than once too few (IFTTT itself does not re-run a script it terminated).
    """
    with transaction.atomic():
        fired = (
            FiredTrigger.objects.select_for_update()
            .select_related("user_connection__connection", "user_connection__user")
            .filter(pk=fired_trigger_id, script_state=ScriptState.RUNNING)
            .first()
        )
        if fired is None:
            return None
        FiredTrigger.objects.filter(pk=fired.pk).update(
            script_state=ScriptState.FAILED, script_error=reason[:2000], lease_expires_at=None
        )
        connection = fired.user_connection.connection
        run = ScriptRun.objects.create(
            connection=connection,
            fired_trigger=fired,
            user=fired.user_connection.user,
            script=connection.script,
            trigger_id=fired.trigger_id,
            ingredients=fired.ingredients,
            outcome=outcome,
            error=reason,
        )
    metrics.script_runs.labels(outcome=outcome).inc()
    logger.warning("Connection %s script stopped: %s", connection.connection_id, reason)
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
        handler=field_rules_handler(recording_handler(answers or {}), connection=connection, feature_id=feature_name),
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

# Work the broker never delivered (it was down when the webhook arrived) is re-sent after this long.
# Work a worker claimed is judged by its lease alone, never by when it was received: a backlog longer
# than any window must not make a run that is still going look stuck.
SWEEP_RESEND_AFTER = timedelta(seconds=30)
SWEEP_BATCH = 500
STOPPED_REASON = (
    "Stopped before it finished: its worker was stopped (the task's hard time limit, or a restart or crash) "
    "and held it past its lease. It was not run again, since some of its calls may already have been sent."
)


def connections_work_sweep() -> dict[str, int]:
    """Finish what a broker or worker outage left behind. Returns what it did.

    - deliveries whose worker's lease lapsed are processed again (processing is one transaction, so
      a worker that died left nothing half-applied);
    - script runs whose worker's lease lapsed end as failed, with the reason: never re-run;
    - deliveries and script runs never claimed are enqueued again (claiming makes a duplicate a no-op).
    """
    now = timezone.now()
    reclaimed_deliveries = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSING)
        .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, received_at__lt=now - delivery_lease()))
        .update(status=DeliveryStatus.RECEIVED, lease_expires_at=None)
    )
    lapsed = list(
        FiredTrigger.objects.filter(script_state=ScriptState.RUNNING)
        .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, fired_at__lt=now - script_lease()))
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    stopped = sum(
        1
        for pk in lapsed
        if fired_trigger_script_stopped(fired_trigger_id=pk, outcome=ScriptRunOutcome.CRASHED, reason=STOPPED_REASON)
    )
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
        task_enqueue(DELIVERY_TASK, kwargs={"delivery_id": pk})
    for pk in runs:
        task_enqueue(SCRIPT_TASK, kwargs={"fired_trigger_id": pk})
    return {
        "reclaimed_deliveries": reclaimed_deliveries,
        "stopped_script_runs": stopped,
        "deliveries_enqueued": len(deliveries),
        "script_runs_enqueued": len(runs),
    }
