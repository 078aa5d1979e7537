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
    page.click("input[value=Diagnose]")

    # The person's Applets first; the lamp's details from there.
    assert page.locator("#applets .applet").count() == 2
    page.click("[data-identity='ti-lamp-on'] >> text=Details")
    conclusions = page.locator("#conclusions")
    assert "1 matching event has not been returned to IFTTT yet" in conclusions.inner_text()
    chart = page.locator("#timeline-chart svg").first
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


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_console_page_reads_well(
    width: str, life: Any, support_user: Any, live_site: str, chromium: Any, tmp_path: Any
) -> None:
    from playwright.sync_api import expect

    from conftest import PAGE_WIDTHS, page_fits_the_screen, screenshot_path
    from protocol.models import ApiCall

    support_user.is_superuser = True  # the person's page (the user admin) too
    support_user.set_password("support-password-1")
    support_user.save()
    device_switch(device=life.lamp, on=True, source=EventSource.DEVICE)
    ApiCall.objects.create(
        method="GET",
        path="/ifttt/v1/status",
        endpoint="status",
        status_code=401,
        duration_ms=1,
        error_message="The IFTTT-Service-Key is not this service's key.",
    )
    context = chromium.new_context(viewport=PAGE_WIDTHS[width])
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto(f"{live_site}/admin/")
    tab.fill("#id_username", "sam")
    tab.fill("#id_password", "support-password-1")
    tab.click("input[type=submit]")

    expect(tab.locator("#site-name")).to_contain_text("Smart Home support")
    expect(tab.locator("#find-person")).to_be_visible()
    assert page_fits_the_screen(tab)
    tab.screenshot(path=screenshot_path(f"console-index-{width}", tmp_path), full_page=True)

    tab.goto(f"{live_site}/admin/support/diagnosis/")
    expect(tab.locator("#diagnosis-help")).to_contain_text("their email, username or id is enough")
    tab.fill("input[name=user]", "carol")
    tab.click("input[value=Diagnose]")
    lamp = tab.locator("[data-identity='ti-lamp-on']")
    expect(lamp).to_contain_text("Desk lamp (Office)")
    expect(lamp).to_contain_text("1 matching event has not been returned to IFTTT yet")
    expect(tab.locator("[data-identity='ti-hot']")).to_contain_text("the threshold of 25 °C was never crossed")
    assert page_fits_the_screen(tab)
    tab.screenshot(path=screenshot_path(f"console-diagnosis-person-{width}", tmp_path), full_page=True)

    lamp.get_by_text("Details").click()
    expect(tab.locator("#timeline-chart .chart-legend")).to_contain_text("IFTTT's poll")
    assert page_fits_the_screen(tab)
    tab.screenshot(path=screenshot_path(f"console-diagnosis-identity-{width}", tmp_path), full_page=True)

    tab.goto(f"{live_site}/admin/support/health/")
    chart = tab.locator("#hourly-chart")
    expect(chart.locator(".chart-y-axis")).to_be_visible()
    expect(chart.locator(".chart-legend")).to_contain_text("Refused (4xx")
    size = float(chart.locator(".chart-x-axis span").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert size >= 12
    # The axis labels stay inside the chart's box.
    box = chart.locator(".chart-plot").bounding_box()
    last = chart.locator(".chart-x-axis span").last.bounding_box()
    assert box is not None and last is not None and last["x"] + last["width"] <= box["x"] + box["width"] + 1
    expect(tab.locator("#refused-other")).to_contain_text("refused for a missing or wrong service key")
    assert page_fits_the_screen(tab)
    tab.screenshot(path=screenshot_path(f"console-health-{width}", tmp_path), full_page=True)

    tab.goto(f"{live_site}/admin/accounts/user/{life.user.pk}/change/")
    expect(tab.locator("#person-timeline")).to_contain_text("Desk lamp: Switched on")
    tab.screenshot(path=screenshot_path(f"console-person-{width}", tmp_path), full_page=True)
    context.close()


def life_screenshot_path() -> Any:
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "support-diagnosis.png"
