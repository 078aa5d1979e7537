from celery import shared_task

from .services import api_log_prune


@shared_task(name="support.api_log_prune")
def api_log_prune_task() -> int:
    """Scheduled by beat; a delete in batches, so a re-run after a crash just carries on."""
    return api_log_prune()
