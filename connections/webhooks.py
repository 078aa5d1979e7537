"""Reading a Connect webhook's body (protocol section 11.2): the serializers the view checks it with (and
the OpenAPI schema shows), and that the task runs again on the stored body."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import BadRequest, NotFound, serializer_problems

from .inputs import CONNECTION_EVENTS, WebhookInput, ms_to_datetime

KNOWN = {("connection", event) for event in CONNECTION_EVENTS} | {("trigger_subscription", "fired")}


class WebhookText(serializers.CharField):
    """An id or name IFTTT sends: a string (a number is taken as its digits), no longer than its column."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", not kwargs["required"])
        kwargs.setdefault("allow_null", not kwargs["required"])
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.error_messages["max_length"] = "must be at most {max_length} characters long."

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid_type", type=type(data).__name__)
        return super().to_internal_value(str(data))

    default_error_messages = {"invalid_type": "must be a string, not {type}."}


@extend_schema_field(OpenApiTypes.INT)
class MillisField(serializers.Field):
    """A time as IFTTT sends it: milliseconds since 1970, such as 1560285630711."""

    default_error_messages = {"invalid": "must be a time in milliseconds since 1970, such as 1560285630711."}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or ms_to_datetime(data) is None:
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _object(serializer: type[serializers.Serializer], **kwargs: Any) -> serializers.Serializer:
    return serializer(**kwargs, error_messages={"invalid": "must be an object, not {datatype}."})


class ConnectionDataSerializer(serializers.Serializer):
    connection_id = WebhookText(required=True, max_length=100)
    user_id = WebhookText(required=True, max_length=32, help_text="The user's id from user/info.")
    user_timezone = WebhookText(
        max_length=100, help_text="A Rails time zone name, such as “Pacific Time (US & Canada)”."
    )


class FiredDataSerializer(ConnectionDataSerializer):
    trigger_id = WebhookText(required=True, max_length=200)
    feature_id = WebhookText(max_length=100)
    user_feature_id = WebhookText(max_length=100)
    user_feature_trigger_id = WebhookText(max_length=100)


class ConnectionEventDataSerializer(serializers.Serializer):
    # `{event}_at` (enabled_at, updated_at, disabled_at): read by name in webhook_input_parse.
    pass


class FiredEventDataSerializer(serializers.Serializer):
    ingredients = serializers.DictField(
        required=False, allow_null=True, error_messages={"not_a_dict": "must be an object, not {input_type}."}
    )


class ConnectionWebhookSerializer(serializers.Serializer):
    sent_at = MillisField(required=False, allow_null=True)
    type = serializers.CharField(required=False, help_text="connection")
    event = serializers.CharField(required=False, help_text="enabled, updated or disabled")
    # A field named `data`, as IFTTT names it; DRF's metaclass moves it off the class, so it does not
    # shadow Serializer.data.
    data = _object(ConnectionDataSerializer)  # type: ignore[assignment]
    event_data = _object(ConnectionEventDataSerializer, required=False, allow_null=True)


class FiredWebhookSerializer(ConnectionWebhookSerializer):
    data = _object(FiredDataSerializer)
    event_data = _object(FiredEventDataSerializer, required=False, allow_null=True)


class WebhookAnswerDataSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The delivery's id, as support sees it.")
    duplicate = serializers.BooleanField(help_text="True when this exact delivery was received before.")
    handled = serializers.BooleanField(help_text="False for webhook types this service does not handle.")


class WebhookAnswerSerializer(serializers.Serializer):
    data = WebhookAnswerDataSerializer()  # type: ignore[assignment]  # as above


def webhook_serializer_for(kind: str) -> type[serializers.Serializer]:
    return FiredWebhookSerializer if kind == "trigger_subscription" else ConnectionWebhookSerializer


def _problem(path: str, code: str, message: str) -> str:
    if code in ("required", "null"):
        return f"The webhook body is missing “{path}”." if path else "The webhook body is missing a field."
    return f"“{path}” {message}" if path else f"The webhook body {message}"


def webhook_input_parse(kind: str, event: str, body: dict[str, Any], *, user: Any = None) -> WebhookInput:
    """Check a known webhook's body (section 11.2) and resolve its user; raise a clear 400/404 if it is wrong."""
    serializer = webhook_serializer_for(kind)(data=body)
    if not serializer.is_valid():
        path, code, message = serializer_problems(serializer.errors)[0]
        raise BadRequest(_problem(path, code, message))
    checked: dict[str, Any] = serializer.validated_data
    data = checked["data"]
    event_data = body.get("event_data") or {}
    if user is None:
        user = get_user_model().objects.filter(public_id=data["user_id"]).first()
        if user is None:
            raise NotFound(f"No account here has the user id “{data['user_id']}”; nothing was recorded.")
    webhook = WebhookInput(
        type=kind,
        event=event,
        connection_id=data["connection_id"],
        user=user,
        user_timezone=data.get("user_timezone") or "",
        sent_at=ms_to_datetime(checked.get("sent_at")),
        payload=body,
    )
    if kind == "connection":
        webhook.event_at = ms_to_datetime(event_data.get(f"{event}_at"))
    else:
        webhook.trigger_id = data["trigger_id"]
        webhook.feature_id = data.get("feature_id") or ""
        webhook.user_feature_id = data.get("user_feature_id") or ""
        webhook.user_feature_trigger_id = data.get("user_feature_trigger_id") or ""
        webhook.ingredients = (checked.get("event_data") or {}).get("ingredients") or {}
    return webhook
