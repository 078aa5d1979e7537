from celery import shared_task

from .retention import retention_prune


@shared_task(name="core.retention_prune")
def retention_prune_task() -> dict[str, int]:
    """Scheduled daily by beat. Deletes in batches, so a re-run after a crash carries on."""
    return retention_prune()
