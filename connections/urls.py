from django.urls import path

from . import apis

# The webhooks IFTTT documents, each described in the OpenAPI schema; any other type is accepted too.
urlpatterns = [
    path("connection/enabled", apis.WebhookApi.as_view(), {"kind": "connection", "event": "enabled"}),
    path("connection/updated", apis.WebhookApi.as_view(), {"kind": "connection", "event": "updated"}),
    path("connection/disabled", apis.WebhookApi.as_view(), {"kind": "connection", "event": "disabled"}),
    path(
        "trigger_subscription/fired",
        apis.WebhookApi.as_view(),
        {"kind": "trigger_subscription", "event": "fired"},
    ),
    path("<slug:kind>/<slug:event>", apis.OtherWebhookApi.as_view(), name="connect-webhook"),
]
