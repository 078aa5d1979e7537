"""What the protocol core keeps: the API log (detail, failures, summaries), IFTTT's OAuth records, and
the events IFTTT's endpoint tests cause on the isolated test account."""

from django.db.models import Q
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken, clear_expired

from core.retention import history, kept
from devices.models import DeviceEvent

from .api_log import api_log_prune
from .models import ApiCall, ApiCallSummary, SpentAuthorizationCode


def _oauth_expired_prune(batch: int) -> int:
    """The provider's own clean-up (expired grants, and tokens past REFRESH_TOKEN_EXPIRE_SECONDS)."""
    before = AccessToken.objects.count() + RefreshToken.objects.count() + Grant.objects.count()
    clear_expired()
    return before - (AccessToken.objects.count() + RefreshToken.objects.count() + Grant.objects.count())


kept(
    ApiCall,
    by="created_at",
    setting="API_LOG_DETAIL_HOURS",
    unit="hours",
    why="each call's detail; failed calls for API_LOG_FAILURE_RETENTION_DAYS; each day summed up first",
    prune=api_log_prune,
)
kept(ApiCallSummary, by="day", setting="API_LOG_SUMMARY_RETENTION_DAYS", why="per day, user and endpoint")
kept(
    AccessToken,
    by="expires",
    setting="",
    why="expired tokens and grants go with the provider's clear_expired (rotated refresh tokens daily too)",
    prune=_oauth_expired_prune,
    keeps="until expired",
)
history(RefreshToken, why="pruned with access tokens (above) and by the daily rotated-token prune")
history(Grant, why="authorization codes expire in minutes; pruned with access tokens (above)")
kept(
    SpentAuthorizationCode,
    by="spent_at",
    setting="OAUTH_SPENT_CODE_RETENTION_DAYS",
    why="digests of used authorization codes, so a replayed code revokes what it issued",
)
history(IDToken, why="not issued (IFTTT does not use OpenID Connect)")
history(Application, why="configuration: IFTTT's OAuth client")
kept(
    DeviceEvent,
    by="occurred_at",
    setting="TEST_ACCOUNT_EVENT_RETENTION_DAYS",
    why="events IFTTT's endpoint tests cause on the test account; its sample history is kept",
    only=Q(owner__is_ifttt_test_user=True) & ~Q(external_id__startswith="test-setup:"),
)
