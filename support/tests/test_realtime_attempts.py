"""Support sees every attempt of a Realtime notification on its delivery page, not only the last."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from devices.models import EventSource
from devices.services import device_switch
from triggers import tasks
from triggers.models import RealtimeDelivery, TriggerIdentity
from triggers.tests.standin import Reply, standin


def test_the_delivery_page_lists_each_attempt(
    support_client: Client, life: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    TriggerIdentity.objects.filter(identity="ti-lamp-on").update(notify_pending_since=None)
    with standin([Reply(502)]) as server:
        settings.IFTTT_REALTIME_URL = server.url
        with django_capture_on_commit_callbacks(execute=True):
            device_switch(device=life.lamp, on=True, source=EventSource.ACCOUNT)
        delivery = RealtimeDelivery.objects.get()
        RealtimeDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        tasks.realtime_delivery_retry(delivery.pk)

    page = support_client.get(reverse("admin:triggers_realtimedelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Failed, will retry" in text and "502" in text
    assert "Delivered" in text
    assert delivery.request_id in text
