from datetime import UTC, datetime

from core.retry import RetryPolicy, parse_retry_after, should_retry


def test_delay_grows_but_never_passes_the_cap():
    policy = RetryPolicy(base_seconds=1, cap_seconds=10, max_attempts=20)
    for attempts in range(1, 20):
        assert 0 <= policy.delay(attempts=attempts) <= min(10, 2 ** (attempts - 1))


def test_retry_after_is_a_floor_within_the_cap():
    policy = RetryPolicy(base_seconds=1, cap_seconds=60)
    assert policy.delay(attempts=1, retry_after=30) >= 30
    assert policy.delay(attempts=1, retry_after=3600) == 60


def test_a_request_that_may_have_run_is_not_repeated_unless_idempotent():
    assert not should_retry(status=None, idempotent=False)  # timed out after sending
    assert not should_retry(status=502, idempotent=False)  # IFTTT: the downstream service failed
    assert should_retry(status=502, idempotent=True)
    assert should_retry(status=None, idempotent=False, sent=False)  # never left
    assert should_retry(status=429, idempotent=False)  # not processed
    assert not should_retry(status=400, idempotent=True)


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now=now) == 60
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
