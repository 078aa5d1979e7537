"""What a checked Connect webhook says, as the services rely on it (protocol section 11.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
