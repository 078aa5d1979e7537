"""Writes for actions: running one and recording the run."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from core.errors import Skip
from protocol.registry import ActionSpec, Fields

from .models import ActionRun, ActionRunStatus


def action_run(
    *, spec: ActionSpec, user: Any, fields: Fields, request_id: str = "", ifttt_source: Any = None
) -> ActionRun:
    """Run an action and record the run, whatever its outcome.

    The action's changes and its run row commit together; a SKIP is recorded (with its message)
    and re-raised for the view to answer.
    """
    source = ifttt_source if isinstance(ifttt_source, dict) else {}
    try:
        with transaction.atomic():
            result = spec.run(user, fields)
            return ActionRun.objects.create(
                user=user,
                action_slug=spec.slug,
                fields=dict(fields),
                status=ActionRunStatus.SUCCEEDED,
                message=f"{result.device.name}: {'changed' if result.event else 'already in that state'}",
                event=result.event,
                request_id=request_id[:64],
                ifttt_source=source,
            )
    except Skip as skip:
        ActionRun.objects.create(
            user=user,
            action_slug=spec.slug,
            fields=dict(fields),
            status=ActionRunStatus.SKIPPED,
            message=skip.message,
            request_id=request_id[:64],
            ifttt_source=source,
        )
        raise


def action_run_url(run: ActionRun) -> str:
    return f"{settings.SITE_URL}/account/#run-{run.public_id}"
