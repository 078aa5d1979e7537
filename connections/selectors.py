"""Reads for connections."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import ScriptRun, UserConnection


def user_connection_get(*, user: Any, connection_id: str) -> UserConnection | None:
    return UserConnection.objects.filter(user=user, connection__connection_id=connection_id).first()


def script_runs_list(*, connection_id: str, limit: int = 50) -> QuerySet[ScriptRun]:
    return ScriptRun.objects.filter(connection__connection_id=connection_id).order_by("-created_at", "-id")[:limit]
