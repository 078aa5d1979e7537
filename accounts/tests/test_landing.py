"""The landing page at `/`: the service in its own identity, generated from the catalog and the recipes."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from protocol.recipes import RECIPES
from protocol.registry import registry


def test_the_landing_page_shows_the_service_its_catalog_and_applet_ideas(client: Client, settings: Any) -> None:
    settings.SERVICE_NAME = "Acme Home"
    settings.IFTTT_SERVICE_SLUG = "acme_home"

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 id="hero-title">Acme Home works with IFTTT</h1>' in html
    assert 'href="https://ifttt.com/acme_home"' in html
    for spec in [*registry.triggers.values(), *registry.queries.values(), *registry.actions.values()]:
        assert f"<dt>{spec.label}</dt>" in html.replace("&#x27;", "'")
    for recipe in RECIPES:
        assert recipe.name in html
    assert 'id="works-with-ifttt"' in html
    assert "Sign in" in html and "Your account" not in html
    # Nothing is loaded from elsewhere, and nothing runs.
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(url.startswith("/") for url in loaded if not url.startswith(("https://ifttt.com/", "mailto:")))
    assert "<script" not in html
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_signed_in_users_see_a_link_to_their_account(client: Client, make_user: Any) -> None:
    client.force_login(make_user("alice"))

    html = client.get("/").content.decode()

    assert 'href="/account/">Your account</a>' in html


def test_the_logo_and_brand_colour_are_served_from_the_settings(client: Client, settings: Any, tmp_path: Any) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg"><path fill="#fff" d="M0 0h1v1z"/></svg>')
    settings.SERVICE_LOGO = logo
    settings.SERVICE_BRAND_COLOR = "#ff6600"

    served = client.get("/brand/logo.svg")
    theme = client.get("/brand/theme.css")

    assert served["Content-Type"] == "image/svg+xml"
    assert served.content == logo.read_bytes()
    assert "--brand: #ff6600;" in theme.content.decode()
    settings.SERVICE_BRAND_COLOR = "red; } body { display: none"
    assert "--brand: #1f6feb;" in client.get("/brand/theme.css").content.decode()


def test_every_page_shows_the_configured_logo_not_a_drawn_one(client: Client, settings: Any) -> None:
    settings.SERVICE_NAME = "Acme Home"
    html = client.get("/accounts/login/").content.decode()

    assert "Acme Home" in html and 'src="/brand/logo.svg"' in html and "<svg" not in html


def test_setup_ifttt_shows_the_service_identity(db: Any, settings: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    settings.SERVICE_NAME = "Acme Home"
    out = StringIO()
    call_command("setup_ifttt", stdout=out)

    text = out.getvalue()
    assert "Name              Acme Home" in text
    assert f"https://ifttt.com/{settings.IFTTT_SERVICE_SLUG}" in text and "Authorization URL" in text
