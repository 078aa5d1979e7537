"""Connect webhook work. Each task takes an id and claims its row, so a redelivered message is a no-op."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import services
from .models import ScriptRunOutcome

SCRIPT_SOFT_LIMIT, SCRIPT_HARD_LIMIT = services.script_task_limits()


@shared_task(name=services.DELIVERY_TASK)
def webhook_delivery_process_task(delivery_id: int) -> None:
    services.webhook_delivery_process(delivery_id=delivery_id)


# The script limits its own run to CONNECTIONS_SCRIPT_TIMEOUT; these limits are the backstop above it,
# for a run stuck outside the script. Past the soft one the run ends as failed and is never re-run.
@shared_task(name=services.SCRIPT_TASK, soft_time_limit=SCRIPT_SOFT_LIMIT, time_limit=SCRIPT_HARD_LIMIT)
def fired_trigger_script_run_task(fired_trigger_id: int) -> None:
    try:
        services.fired_trigger_script_run(fired_trigger_id=fired_trigger_id)
    except (SoftTimeLimitExceeded, services.ScriptRunStopped):
        services.fired_trigger_script_stopped(
            fired_trigger_id=fired_trigger_id,
            outcome=ScriptRunOutcome.TIMED_OUT,
            reason=(
                f"Stopped by the {SCRIPT_SOFT_LIMIT:g} s time limit of its task, outside the script's own "
                "limit (a call that did not return in time). Not run again: some of its calls may have been sent."
            ),
        )


@shared_task(name="connections.work_sweep")
def connections_work_sweep_task() -> dict[str, int]:
    return services.connections_work_sweep()
