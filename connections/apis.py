"""Connect webhooks: POST /ifttt/v1/webhooks/{type}/{event}, authenticated by the service key.

The view checks the body, stores the delivery and answers; the work runs in a task after commit.
"""

from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import BadRequest
from protocol.apis import ServiceKeyApi

from .services import webhook_delivery_receive
from .webhooks import KNOWN, WebhookAnswerSerializer, webhook_input_parse, webhook_serializer_for

logger = logging.getLogger(__name__)

_ERROR: dict[str, Any] = {"$ref": "#/components/schemas/ErrorResponse"}


class WebhookSchema(AutoSchema):
    """One view serves every webhook URL; each path is described with the body its type really takes."""

    def get_request_serializer(self) -> Any:
        kind = "trigger_subscription" if "/trigger_subscription/" in self.path else "connection"
        return webhook_serializer_for(kind)

    def get_operation_id(self) -> str:
        return "webhooks_" + "_".join(self.path.rstrip("/").split("/")[-2:])


class WebhookApi(ServiceKeyApi):
    schema = WebhookSchema()  # described from the view, unlike the registry-generated endpoints

    @extend_schema(
        summary="A Connect API webhook from IFTTT",
        description=(
            "Body: `sent_at` (ms), `type`, `event`, `data` {connection_id, user_id, user_timezone, and for "
            "fired triggers trigger_id, feature_id, user_feature_id, user_feature_trigger_id}, `event_data` "
            "({ingredients} for fired triggers). A repeated delivery (same X-Request-ID or same body) is "
            "answered with `duplicate: true` and changes nothing."
        ),
        tags=["connections"],
        responses={
            200: WebhookAnswerSerializer,
            400: OpenApiResponse(_ERROR, description="A field is missing or wrong; the message names it"),
            401: OpenApiResponse(_ERROR, description="Missing or wrong IFTTT-Service-Key"),
            404: OpenApiResponse(_ERROR, description="No account has the body's data.user_id"),
            413: OpenApiResponse(_ERROR, description="The body is larger than the service accepts"),
            415: OpenApiResponse(_ERROR, description="The body is not JSON"),
        },
        auth=[{"serviceAuth": []}],  # type: ignore[list-item]  # security requirements, despite the stub
    )
    def post(self, request: Request, kind: str, event: str) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise BadRequest("The webhook body must be a JSON object.")
        webhook = webhook_input_parse(kind, event, body) if (kind, event) in KNOWN else None
        if webhook is None:
            logger.info("Connect webhook %s/%s has no handler; answered 200 and kept it", kind, event)
        delivery, created = webhook_delivery_receive(
            kind=kind,
            event=event,
            payload=body,
            request_id=request.headers.get("X-Request-ID", ""),
            webhook=webhook,
        )
        return Response({"data": {"id": delivery.public_id, "duplicate": not created, "handled": webhook is not None}})


class OtherWebhookApi(WebhookApi):
    """Webhook types IFTTT may add later: accepted and kept, never described."""

    schema = None
