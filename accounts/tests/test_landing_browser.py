"""The landing page in Chromium: readable on a phone and a desktop, nothing loaded from elsewhere, no
script needed. Set UPDATE_SCREENSHOTS=1 to refresh docs/landing-phone.png and docs/landing-desktop.png."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

pytestmark = [pytest.mark.services, pytest.mark.slow]

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def _screenshot(tmp_path: Path, name: str) -> str:
    folder = Path(settings.BASE_DIR) / "docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    return str(folder / name)


@pytest.fixture
def chromium_extra_args() -> list[str]:
    return ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


@pytest.mark.parametrize(("viewport", "name"), [(PHONE, "landing-phone.png"), (DESKTOP, "landing-desktop.png")])
def test_the_landing_page_in_a_browser(
    live_site: str, chromium: Any, tmp_path: Path, viewport: dict[str, int], name: str
) -> None:
    context = chromium.new_context(viewport=viewport, device_scale_factor=1, java_script_enabled=False)
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(live_site) else None)

    page.goto(f"{live_site}/")

    assert page.get_by_role("heading", level=1).inner_text() == f"{settings.SERVICE_NAME} works with IFTTT"
    assert page.get_by_role("heading", name="Applet ideas").is_visible()
    link = page.get_by_role("link", name=f"Connect {settings.SERVICE_NAME} on IFTTT")
    assert link.get_attribute("href") == f"https://ifttt.com/{settings.IFTTT_SERVICE_SLUG}"
    # The logo and the stylesheets loaded (the logo sits on the brand colour).
    assert page.evaluate("document.querySelector('.hero-logo img').naturalWidth") > 0
    background = page.evaluate("getComputedStyle(document.querySelector('.hero-logo')).backgroundColor")
    assert background != "rgba(0, 0, 0, 0)"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "wider than the screen"
    assert outside == []
    page.screenshot(path=_screenshot(tmp_path, name), full_page=True)
    context.close()
