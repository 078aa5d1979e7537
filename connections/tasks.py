"""Connect webhook work. Each task takes an id and claims its row, so a redelivered message is a no-op."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="connections.webhook_delivery_process")
def webhook_delivery_process_task(delivery_id: int) -> None:
    services.webhook_delivery_process(delivery_id=delivery_id)


# The script limits its own run to CONNECTIONS_SCRIPT_TIMEOUT; the task limit is a backstop above it.
@shared_task(name="connections.fired_trigger_script_run", soft_time_limit=60, time_limit=90)
def fired_trigger_script_run_task(fired_trigger_id: int) -> None:
    services.fired_trigger_script_run(fired_trigger_id=fired_trigger_id)


@shared_task(name="connections.work_sweep")
def connections_work_sweep_task() -> dict[str, int]:
    return services.connections_work_sweep()
