"""The account page and the sign-in refusal in a real browser (Chromium via Playwright), at a desktop's
width and a phone's: what a person notices after IFTTT's Applets act on their devices."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import PAGE_WIDTHS, IftttClient, page_fits_the_screen, screenshot_path
from devices.models import DeviceKind, EventSource, EventType
from devices.services import NewEvent, device_create, device_events_record
from protocol.access import ifttt_token_issue

from .conftest import PASSWORD, authorize_url

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def home(make_user: Any, ifttt_app: Any) -> Any:
    """Alice's home after IFTTT's Applets ran: the hall light set to blue, the thermostat to 21.5 °C."""
    alice = make_user("alice", first_name="Alice")
    light = device_create(owner=alice, name="Hall light", kind=DeviceKind.LIGHT, room="Hall")
    thermostat = device_create(owner=alice, name="Living room thermostat", kind=DeviceKind.THERMOSTAT, room="Living")
    device_create(owner=alice, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office")
    device_events_record(
        device=thermostat, events=[NewEvent(type=EventType.TEMPERATURE, value=19.5)], source=EventSource.DEVICE
    )
    ifttt = IftttClient(Client(), ifttt_token_issue(user=alice).token)
    ran = ifttt.post(
        "/ifttt/v1/actions/set_light_color", {"actionFields": {"lights": light.public_id, "color": "blue"}}
    )
    assert ran.status_code == 200, ran.content
    warm = {"actionFields": {"device": thermostat.public_id, "temperature": "21.5"}}
    assert ifttt.post("/ifttt/v1/actions/set_temperature", warm).status_code == 200
    return alice, light, thermostat, ran.json()["data"][0]["url"]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_account_page_shows_what_applets_did(
    width: str, home: Any, live_site: str, chromium: Any, tmp_path: Any
) -> None:
    from playwright.sync_api import expect

    _alice, light, thermostat, run_url = home
    context = chromium.new_context(viewport=PAGE_WIDTHS[width])
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_site}/accounts/login/?next=/account/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    row = page.locator(f"#device-{light.public_id}")
    expect(row.locator("[data-state=color]")).to_have_text("Colour blue")
    hot = page.locator(f"#device-{thermostat.public_id}")
    expect(hot.locator("[data-state=temperature]")).to_contain_text("Reads 19.5 °C")
    expect(hot.locator("[data-state=target]")).to_have_text("Target 21.5 °C")
    # The link IFTTT shows for the run lands on it.
    anchor = run_url.split("#", 1)[1]
    page.goto(f"{live_site}/account/#{anchor}")
    run = page.locator(f"#{anchor}")
    expect(run).to_contain_text("Change a light's colour")
    expect(run).to_contain_text("Hall light (Hall)")
    expect(run).to_be_in_viewport()
    # The week's chart: a value axis, day labels and a legend a person can read.
    chart = page.locator("#activity .chart")
    expect(chart.locator(".chart-y-axis")).to_be_visible()
    expect(chart.locator(".chart-legend")).to_contain_text("Colour or temperature set")
    size = float(chart.locator(".chart-x-axis span").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert size >= 12
    assert page_fits_the_screen(page)
    page.goto(f"{live_site}/account/")
    page.screenshot(path=screenshot_path(f"account-{width}", tmp_path), full_page=True)

    # Switching a device: the confirmation is beside it, on screen, even on a phone.
    page.get_by_role("button", name="Switch Desk lamp on").click()
    confirmation = page.get_by_text("Desk lamp is on.")
    expect(confirmation).to_be_in_viewport()
    assert page_fits_the_screen(page)
    if width == "phone":
        page.screenshot(path=screenshot_path("account-switched-phone", tmp_path))
    context.close()


def test_an_unknown_client_is_refused_before_sign_in(
    ifttt_app: Any, live_site: str, chromium: Any, tmp_path: Any
) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=PAGE_WIDTHS["phone"])
    page.goto(live_site + authorize_url(client_id="someone-else"))
    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used to connect your account")
    expect(page.get_by_label("Password")).to_have_count(0)
    page.goto(live_site + authorize_url(redirect_uri="https://evil.example/cb"))
    expect(page.get_by_text("Mismatching redirect URI")).to_be_visible()
    assert page_fits_the_screen(page)
    page.screenshot(path=screenshot_path("authorize-refused-phone", tmp_path))
    page.close()
