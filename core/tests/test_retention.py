"""Storage is bounded by design: every table has a retention or is history kept on purpose."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from actions.models import ActionRun, ActionRunStatus
from core.retention import History, Kept, retention_policies, retention_prune
from devices.models import DeviceEvent, DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from protocol.models import ApiCall, ApiCallSummary
from protocol.services import endpoint_tests_prepare
from triggers.models import TriggerFeedItem, TriggerIdentity


def test_every_table_has_a_retention_or_is_history_on_purpose() -> None:
    declared = {policy.label for policy in retention_policies()}
    tables = {
        model._meta.label for model in apps.get_models() if not model._meta.proxy and not model._meta.auto_created
    }
    assert tables - declared == set(), "declare these in their app's retention.py, as kept(...) or history(...)"
    for policy in retention_policies():
        assert policy.why, policy.label
        if isinstance(policy, Kept):
            assert policy.describe()


def test_the_listing_says_what_each_table_keeps() -> None:
    out = StringIO()
    call_command("retention", stdout=out)
    text = out.getvalue()
    assert "iftttsvc.ApiCall" in text and "48 hours (`API_LOG_DETAIL_HOURS`)" in text
    assert "devices.DeviceEvent" in text and "history, kept on purpose" in text
    assert sum(isinstance(p, History) for p in retention_policies()) >= 1


def _call(*, age: timedelta, status: int = 200, user: Any = None) -> ApiCall:
    call = ApiCall.objects.create(
        method="POST",
        path="/ifttt/v1/triggers/x",
        endpoint="trigger-poll",
        slug="x",
        status_code=status,
        duration_ms=2.0,
        user=user,
    )
    ApiCall.objects.filter(pk=call.pk).update(created_at=timezone.now() - age)
    return call


@pytest.mark.django_db
def test_api_log_detail_goes_after_48_hours_summed_up_failures_stay_longer(make_user: Any, settings: Any) -> None:
    settings.API_LOG_DETAIL_HOURS = 48
    settings.API_LOG_FAILURE_RETENTION_DAYS = 30
    alice = make_user("alice")
    recent = _call(age=timedelta(hours=1), user=alice)
    old_ok = [_call(age=timedelta(days=5), user=alice) for _ in range(3)]
    old_failed = _call(age=timedelta(days=5), status=401, user=alice)
    ancient_failed = _call(age=timedelta(days=40), status=500)

    retention_prune()

    left = set(ApiCall.objects.values_list("pk", flat=True))
    assert recent.pk in left and old_failed.pk in left
    assert not left & {c.pk for c in old_ok} and ancient_failed.pk not in left
    day = (timezone.now() - timedelta(days=5)).date()
    summary = ApiCallSummary.objects.get(day=day, user=alice, endpoint="trigger-poll", slug="x")
    assert (summary.calls, summary.failures) == (4, 1)  # the failure is counted once, though kept longer

    retention_prune()  # again: nothing is summed twice
    assert ApiCallSummary.objects.get(pk=summary.pk).calls == 4


@pytest.mark.django_db
def test_finished_work_ages_out_and_open_work_stays(make_user: Any, settings: Any) -> None:
    settings.ACTION_RUN_RETENTION_DAYS = 30
    alice = make_user("alice")
    old = ActionRun.objects.create(user=alice, action_slug="switch_on", status=ActionRunStatus.SUCCEEDED)
    new = ActionRun.objects.create(user=alice, action_slug="switch_on", status=ActionRunStatus.SUCCEEDED)
    ActionRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    totals = retention_prune()
    assert totals["actions.ActionRun"] == 1
    assert list(ActionRun.objects.values_list("pk", flat=True)) == [new.pk]


@pytest.mark.django_db
def test_a_feed_keeps_what_a_poll_can_read_and_the_timeline_stays_whole(
    make_user: Any, settings: Any, client: Any
) -> None:
    settings.TRIGGER_FEED_KEEP = 5
    alice = make_user("alice")
    lamp = device_create(owner=alice, name="Lamp", kind=DeviceKind.LIGHT, room="Office")
    identity = TriggerIdentity.objects.create(
        identity="ti-1", user=alice, trigger_slug="device_switched_on", fields={"device": lamp.public_id}
    )
    events = device_events_record(
        device=lamp, events=[NewEvent(type=EventType.SWITCHED_ON) for _ in range(8)], source=EventSource.DEVICE
    )
    assert TriggerFeedItem.objects.filter(identity=identity).count() == 8  # written as the events arrived
    retention_prune()
    kept_ids = set(TriggerFeedItem.objects.filter(identity=identity).values_list("event__public_id", flat=True))
    newest = sorted(events, key=lambda e: (e.occurred_at, e.pk), reverse=True)
    assert kept_ids == {e.public_id for e in newest[:5]}
    identity.refresh_from_db()
    assert identity.feed_complete is False  # a poll for more than 5 reads the history


@pytest.mark.django_db
def test_the_test_accounts_history_does_not_grow_with_every_endpoint_test_run(settings: Any) -> None:
    settings.TEST_ACCOUNT_EVENT_RETENTION_DAYS = 7
    endpoint_tests_prepare()
    samples = DeviceEvent.objects.filter(owner__is_ifttt_test_user=True).count()
    lamp = DeviceEvent.objects.filter(owner__is_ifttt_test_user=True).first()
    assert lamp is not None
    caused = device_events_record(
        device=lamp.device, events=[NewEvent(type=EventType.SWITCHED_ON)] * 3, source=EventSource.IFTTT
    )
    DeviceEvent.objects.filter(pk__in=[e.pk for e in caused]).update(occurred_at=timezone.now() - timedelta(days=8))
    retention_prune()
    assert DeviceEvent.objects.filter(owner__is_ifttt_test_user=True).count() == samples
    endpoint_tests_prepare()  # and the sample history is still whole: nothing to record again
    assert DeviceEvent.objects.filter(owner__is_ifttt_test_user=True).count() == samples
