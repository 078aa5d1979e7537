from celery import shared_task

from . import access as services


@shared_task(name="protocol.oauth_rotated_tokens_prune")
def oauth_rotated_tokens_prune_task() -> int:
    return services.oauth_rotated_tokens_prune()
