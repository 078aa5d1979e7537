"""What connections keep: configuration for good, finished work for CONNECTIONS_RETENTION_DAYS."""

from django.db.models import Q

from core.retention import history, kept

from .models import (
    ConnectApiCall,
    Connection,
    ConnectionField,
    DeliveryStatus,
    FiredTrigger,
    ScriptRun,
    ScriptState,
    UserConnection,
    WebhookDelivery,
)

history(Connection, why="configuration: the service's connections and their scripts")
history(ConnectionField, why="configuration: how each feature's fields are set")
history(UserConnection, why="each person's current connection state")
kept(
    WebhookDelivery,
    by="received_at",
    setting="CONNECTIONS_RETENTION_DAYS",
    why="each Connect webhook received, once handled (open ones stay)",
    only=~Q(status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING]),
)
kept(
    FiredTrigger,
    by="fired_at",
    setting="CONNECTIONS_RETENTION_DAYS",
    why="each fired trigger, once its script is done (open ones stay)",
    only=~Q(script_state__in=[ScriptState.PENDING, ScriptState.RUNNING]),
)
kept(ScriptRun, by="created_at", setting="CONNECTIONS_RETENTION_DAYS", why="each script run, its calls and output")
kept(
    ConnectApiCall,
    by="created_at",
    setting="CONNECTIONS_RETENTION_DAYS",
    why="each call to IFTTT's Connect API, the connection's API logs",
)
