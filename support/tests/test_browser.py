"""A support person's walk through the diagnosis page in a real browser (Chromium, via Playwright)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import IftttClient
from devices.models import EventSource
from devices.services import device_switch

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def page(live_site: str, chromium: Any) -> Any:
    tab = chromium.new_page(viewport={"width": 1280, "height": 900})
    tab.set_default_timeout(15_000)
    return tab


def test_support_finds_why_an_applet_did_not_run(life: Any, support_user: Any, live_site: str, page: Any) -> None:
    support_user.set_password("support-password-1")
    support_user.save()
    # IFTTT polled once, then the lamp was switched on: the event is waiting for IFTTT's next poll.
    ifttt = IftttClient(Client(), life.token)
    body = {"trigger_identity": "ti-lamp-on", "triggerFields": {"device": life.lamp.public_id}}
    assert ifttt.post("/ifttt/v1/triggers/device_switched_on", body).status_code == 200
    device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)

    page.goto(f"{live_site}/admin/support/diagnosis/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "support-password-1")
    page.click("input[type=submit]")

    page.fill("input[name=user]", "carol@example.com")
    page.select_option("select[name=trigger]", "device_switched_on")
    page.click("text=Diagnose")

    conclusions = page.locator("#conclusions")
    assert "1 matching event(s)" in conclusions.inner_text()
    assert "have not been returned to IFTTT yet" in conclusions.inner_text()
    chart = page.locator("#timeline-chart svg")
    assert chart.is_visible()
    assert page.locator("#timeline-chart svg .mark").count() >= 2  # the event and the poll
    assert "0123456789abcdef0123456789abcdef" in page.locator("#polls").inner_text()  # X-Request-ID
    assert "200" in page.locator("#polls").inner_text()
    assert "Switched on" in page.locator("#events").inner_text()
    page.screenshot(path=str(life_screenshot_path()), full_page=True)

    # The identity link leads to its admin page, which links straight back to the diagnosis.
    page.click("#identity a:text('ti-lamp-on')")
    assert "ti-lamp-on" in page.title() or "trigger identity" in page.title().lower()
    page.click("text=Diagnose")
    assert page.locator("#conclusions").is_visible()


def life_screenshot_path() -> Any:
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "support-diagnosis.png"
