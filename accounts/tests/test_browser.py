"""The consent flow and the account page in a real browser (Chromium, driven by Playwright), against
the site served over real HTTP. IFTTT's side is played by the test: it reads the URL the browser is
sent to (ifttt.com itself is made unresolvable, so nothing leaves the machine), then exchanges the
code and calls user/info over HTTP as IFTTT's servers do.

Set UPDATE_SCREENSHOTS=1 to refresh docs/consent.png from this run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings

from devices.models import DeviceKind
from devices.services import device_create

from .conftest import CLIENT_SECRET, PASSWORD, STATE, authorize_url

pytestmark = [pytest.mark.services, pytest.mark.slow]

PHONE = {"width": 375, "height": 812}


@pytest.fixture
def alice(make_user: Any) -> Any:
    user = make_user("alice", first_name="Alice", last_name="Example")
    device_create(owner=user, name="Desk lamp", kind=DeviceKind.LIGHT, room="Office")
    return user


@pytest.fixture
def bob(make_user: Any) -> Any:
    return make_user("bob", first_name="Bob")


@pytest.fixture
def chromium_extra_args() -> list[str]:
    # The redirect to IFTTT is observed, never delivered.
    return ["--host-resolver-rules=MAP ifttt.com ~NOTFOUND"]


@pytest.fixture
def browser(live_site: str, chromium: Any) -> Any:
    """Chromium, closed before the live site stops, so no open connection outlives the server."""
    return chromium


class Visit:
    """A phone-sized browser tab that records every request aimed outside the site."""

    def __init__(self, browser: Any, site: str) -> None:
        self.site = site
        self.context = browser.new_context(viewport=PHONE, device_scale_factor=2)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.page.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        if not request.url.startswith(self.site):
            self.outside.append(request.url)

    def sign_in(self, username: str = "alice") -> None:
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()

    def fits_the_screen(self) -> bool:
        return bool(self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))

    def press_and_follow_to_ifttt(self, button: str) -> dict[str, str]:
        """Press a consent button; the query of the IFTTT URL the browser is sent to."""
        with self.page.expect_request(lambda r: r.url.startswith("https://ifttt.com/")) as sent:
            self.page.get_by_role("button", name=button).click()
        url = sent.value.url
        # ifttt.com does not resolve here: let the failed navigation settle before the next one.
        self.page.wait_for_url("chrome-error://**")
        assert url.split("?")[0] == settings.IFTTT_REDIRECT_URI
        return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class FreshConnections:
    """IFTTT's servers calling ours, each request on a connection of its own: a pooled connection can
    be reused just as the live server closes it, and a request sent on it gets no answer."""

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        return requests.get(url, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        return requests.post(url, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs)


@pytest.fixture
def ifttt_server(live_site: str) -> FreshConnections:
    return FreshConnections()


def _screenshot_path(tmp_path: Path) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        return Path(settings.BASE_DIR) / "docs" / "consent.png"
    return tmp_path / "consent.png"


def test_connect_ifttt_in_a_browser_then_disconnect(
    live_site: str, ifttt_app: Any, alice: Any, browser: Any, ifttt_server: FreshConnections, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, live_site)
    page = visit.page

    page.goto(live_site + authorize_url())
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to connect IFTTT")
    visit.sign_in()

    expect(page.get_by_role("heading", level=1)).to_have_text("Connect IFTTT to your Smart Home account?")
    expect(page.get_by_text("Signed in as Alice Example")).to_be_visible()
    expect(page.get_by_text("Switch your devices on and off.")).to_be_visible()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    expect(page.get_by_role("button", name="Deny")).to_be_visible()
    assert visit.fits_the_screen()
    page.screenshot(path=str(_screenshot_path(tmp_path)), full_page=True)

    params = visit.press_and_follow_to_ifttt("Allow")
    assert params["state"] == STATE
    assert [url.split("?")[0] for url in visit.outside] == [settings.IFTTT_REDIRECT_URI]  # nothing else external

    # IFTTT's servers: exchange the code, then ask who the user is.
    tokens = ifttt_server.post(
        f"{live_site}/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "client_id": settings.IFTTT_CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": settings.IFTTT_REDIRECT_URI,
        },
        timeout=10,
    ).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    info = ifttt_server.get(f"{live_site}/ifttt/v1/user/info", headers=bearer, timeout=10)
    assert info.status_code == 200
    assert info.json()["data"]["id"] == alice.public_id

    page.goto(f"{live_site}/account/")
    expect(page.locator("#ifttt-connection")).to_contain_text("connected since")
    page.get_by_role("button", name="Switch Desk lamp on").click()
    expect(page.get_by_text("Desk lamp is on.")).to_be_visible()
    assert visit.fits_the_screen()

    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_text("IFTTT is disconnected")).to_be_visible()
    expect(page.locator("#ifttt-connection")).to_contain_text("Not connected")
    assert ifttt_server.get(f"{live_site}/ifttt/v1/user/info", headers=bearer, timeout=10).status_code == 401
    visit.context.close()


def test_not_you_then_deny_in_a_browser(live_site: str, ifttt_app: Any, alice: Any, bob: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    visit = Visit(browser, live_site)
    page = visit.page

    page.goto(live_site + authorize_url())
    visit.sign_in("alice")
    expect(page.get_by_text("Signed in as Alice Example")).to_be_visible()

    # The wrong account: sign out from the consent page and come back to it as someone else.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to connect IFTTT")
    visit.sign_in("bob")
    expect(page.get_by_text("Signed in as Bob")).to_be_visible()

    assert visit.press_and_follow_to_ifttt("Deny") == {"error": "access_denied", "state": STATE}
    visit.context.close()
