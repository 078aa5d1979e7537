from django.conf import settings
from django.db import models
from django.db.models import Q


class DisconnectedBy(models.TextChoices):
    """Who revoked IFTTT's access to an account (kept on the user, for support)."""

    USER = "user", "the user, on their account page"
    SUPPORT = "support", "support"


class ApiCall(models.Model):
    """One call IFTTT made under /ifttt/: what support reads to answer "why didn't my Applet run?".

    Never holds tokens, keys or request bodies: only what identifies the call and its outcome.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=8)
    # Only for a path that matched no endpoint: the rest is the endpoint and its slug.
    path = models.CharField(max_length=300, blank=True)
    # The kind of endpoint ("trigger", "trigger_options", "action", "query", "status", …) and its slug.
    endpoint = models.CharField(max_length=40)
    slug = models.CharField(max_length=100, blank=True)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField()
    request_id = models.CharField(max_length=64, blank=True)
    realtime = models.BooleanField(default=False)
    test_mode = models.BooleanField(default=False)
    # Indexed with the time below (apicall_user_time); a second index on the key alone would only cost space.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="api_calls",
        db_index=False,
    )
    trigger_identity = models.CharField(max_length=255, blank=True)
    items_returned = models.IntegerField(null=True, blank=True)
    # A trigger poll's newest event id (IFTTT's meta.id): with `items_returned`, which events IFTTT
    # was shown (a poll returns the newest ones), without storing every id of every poll.
    newest_event_id = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    # The first 16 hex digits of the bearer token's SHA-256 (the start of the provider's own
    # `token_checksum`): not the token, but enough to tell which token a refused (401) call used and
    # so whose it was, and when each token was last used.
    token_fingerprint = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        # Few, narrow indexes: at 1,400 calls a second the log is the largest table (docs/capacity.md).
        # An identity's calls are found through its user's index (a user has a handful of identities).
        indexes = [
            models.Index(fields=("user", "-created_at"), name="apicall_user_time"),
            models.Index(fields=("request_id",), name="apicall_request_id"),
            models.Index(fields=("token_fingerprint", "-created_at"), name="apicall_token_time"),
            # Failed calls are few: the health page and the status filters read them from here.
            models.Index(
                fields=("status_code", "-created_at"), condition=Q(status_code__gte=400), name="apicall_failed_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status_code}"


class ApiCallSummary(models.Model):
    """Per UTC day, user, endpoint and slug: how many calls IFTTT made, how many failed, how long they took.

    The API log keeps each call's detail for API_LOG_DETAIL_HOURS; a day is summed up here, whole, before
    its successful calls are deleted, so support can still answer "did IFTTT call at all last week?".
    """

    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_call_summaries"
    )
    endpoint = models.CharField(max_length=40)
    slug = models.CharField(max_length=100, blank=True)
    calls = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    total_ms = models.FloatField(default=0)
    max_ms = models.FloatField(default=0)

    class Meta:
        verbose_name_plural = "API call summaries"
        ordering = ("-day", "endpoint", "slug")
        indexes = [
            models.Index(fields=("user", "-day"), name="apicallsummary_user_day"),
            models.Index(fields=("day",), name="apicallsummary_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} · {self.endpoint} {self.slug} · {self.calls} call(s), {self.failures} failed"


class SpentAuthorizationCode(models.Model):
    """An authorization code that has been presented at the token endpoint, kept as a digest.

    A code is good for one exchange. When it is presented again, the tokens its first exchange issued
    are revoked (RFC 6749 §4.1.2): the second presenter may be whoever stole it.
    """

    # `sha256$<digest>` of the code, as protocol.tokens stores it (codes are unique across clients).
    code = models.CharField(max_length=80, db_index=True)
    # The refresh-token family (django-oauth-toolkit's `token_family`) the exchange started; null when
    # the exchange failed (a wrong code_verifier, a wrong redirect URI) and issued nothing.
    token_family = models.UUIDField(null=True, blank=True)
    spent_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"code …{self.code[-6:]} spent {self.spent_at:%Y-%m-%d %H:%M}"
