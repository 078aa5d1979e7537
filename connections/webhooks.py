"""Reading a Connect webhook's body (protocol section 11.2): the checks the view makes, and the task repeats."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from core.errors import BadRequest, NotFound

from .inputs import CONNECTION_EVENTS, WebhookInput, ms_to_datetime

KNOWN = {("connection", event) for event in CONNECTION_EVENTS} | {("trigger_subscription", "fired")}


def _text(container: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    value = container.get(key)
    if value is None or value == "":
        if required:
            raise BadRequest(f"The webhook body is missing “{where}.{key}”.")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"“{where}.{key}” must be a string, not {type(value).__name__}.")
    return str(value)


def _object(container: dict[str, Any], key: str, where: str, *, required: bool) -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        if required:
            raise BadRequest(f"The webhook body is missing “{where}{key}”, an object.")
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"“{where}{key}” must be an object, not {type(value).__name__}.")
    return value


def webhook_input_parse(kind: str, event: str, body: dict[str, Any], *, user: Any = None) -> WebhookInput:
    """Check a known webhook's body (section 11.2) and resolve its user; raise a clear 400/404 if it is wrong."""
    sent_at_raw = body.get("sent_at")
    if sent_at_raw is not None and (isinstance(sent_at_raw, bool) or ms_to_datetime(sent_at_raw) is None):
        raise BadRequest("“sent_at” must be a time in milliseconds since 1970, such as 1560285630711.")
    data = _object(body, "data", "", required=True)
    event_data = _object(body, "event_data", "", required=False)
    user_id = _text(data, "user_id", "data", required=True)
    connection_id = _text(data, "connection_id", "data", required=True)
    user_timezone = _text(data, "user_timezone", "data", required=False)
    if user is None:
        user = get_user_model().objects.filter(public_id=user_id).first()
        if user is None:
            raise NotFound(f"No account here has the user id “{user_id}”; nothing was recorded.")
    webhook = WebhookInput(
        type=kind,
        event=event,
        connection_id=connection_id,
        user=user,
        user_timezone=user_timezone,
        sent_at=ms_to_datetime(sent_at_raw),
        payload=body,
    )
    if kind == "connection":
        webhook.event_at = ms_to_datetime(event_data.get(f"{event}_at"))
    else:
        webhook.trigger_id = _text(data, "trigger_id", "data", required=True)
        webhook.feature_id = _text(data, "feature_id", "data", required=False)
        webhook.user_feature_id = _text(data, "user_feature_id", "data", required=False)
        webhook.user_feature_trigger_id = _text(data, "user_feature_trigger_id", "data", required=False)
        webhook.ingredients = _object(event_data, "ingredients", "event_data.", required=False)
    return webhook
