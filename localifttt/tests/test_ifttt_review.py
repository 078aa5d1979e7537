"""`ifttt_review` passes this project out of the box and names, with a fix, each thing a reviewer would send back."""

from __future__ import annotations

import json
from dataclasses import replace
from io import StringIO
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from localifttt.copytext import Identity, copy_document, copy_items, copy_markdown, copy_problems
from localifttt.review import consent_finding, logo_finding, support_email_finding
from localifttt.tests import fake_service as fake
from protocol.recipes import RECIPES, recipe_problems
from protocol.registry import Registry, registry

WHITE_LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><g fill="#fff"><path d="M1 1h8v8z"/></g></svg>'
)


def test_the_shipped_logo_is_a_white_vector_on_transparent() -> None:
    finding = logo_finding(Path(settings.SERVICE_LOGO).read_bytes())
    assert finding.problems == []
    assert logo_finding(WHITE_LOGO).problems == []


@pytest.mark.parametrize(
    ("svg", "expected"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><path d="M1 1h8v8z"/></svg>', "black"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><path fill="#1f6feb" d="M1 1z"/></svg>',
            "#1f6feb",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#fff"/>'
            b'<path fill="none" stroke="#fff" d="M1 1h8"/></svg>',
            "background",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
            b'<image href="logo.png" width="10" height="10"/></svg>',
            "raster",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><style>path{fill:red}</style>'
            b'<path d="M1 1z" fill="#fff"/></svg>',
            "<style>",
        ),
        (b"\x89PNG\r\n\x1a\n", "not a well-formed SVG"),
    ],
)
def test_a_logo_that_is_not_white_vector_on_transparent_is_refused(svg: bytes, expected: str) -> None:
    problems = " ".join(logo_finding(svg).problems)
    assert expected in problems


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("support@acme-home.com", ""),
        ("ifttt-help@acme-home.com", ""),
        ("jane.doe@acme-home.com", "looks like a person's address"),
        ("support@gmail.com", "free-mail"),
        ("not an address", "not an email address"),
    ],
)
def test_the_support_email_must_be_a_role_address(email: str, expected: str) -> None:
    problems = " ".join(support_email_finding(email).problems)
    assert (expected in problems) if expected else problems == ""


def test_a_placeholder_support_domain_is_a_warning() -> None:
    finding = support_email_finding("support@example.com")
    assert finding.problems == [] and "placeholder domain" in finding.warnings[0]


def test_a_consent_page_must_name_ifttt_and_ask() -> None:
    assert consent_finding("<h1>Connect IFTTT?</h1><p>IFTTT asks to access your devices.</p>").problems == []
    problems = " ".join(consent_finding("<h1>Sign-in complete</h1><button>OK</button>").problems)
    assert "never names IFTTT" in problems and "consent message" in problems


def test_the_catalog_copy_passes_and_broken_copy_is_named() -> None:
    identity = Identity.from_settings()
    assert copy_problems(copy_items(registry=registry, identity=identity), identity=identity) == []

    broken = Registry()
    trigger = registry.triggers["device_switched_on"]
    broken.add(replace(trigger, label="Device Switched On", description="TODO: describe <b>this</b>"))
    broken.add(replace(registry.triggers["device_switched_off"], label="Device switched on"))
    broken.add(replace(registry.actions["switch_on"], description="Switches on a device"))
    problems = "\n".join(copy_problems(copy_items(registry=broken, identity=identity), identity=identity))

    assert "is not in sentence case (“Switched”)" in problems
    assert "contains a placeholder (“TODO”)" in problems
    assert "contains markup" in problems
    assert "share the name “device switched on”" in problems
    assert "should open with “This action …”" in problems
    assert "should end with a full stop" in problems


def test_too_few_recipes_or_an_unused_query_block_submission(monkeypatch: pytest.MonkeyPatch) -> None:
    few = tuple(r for r in RECIPES if not r.queries)[:3]
    assert recipe_problems(registry, few) == []  # valid recipes, but too few and no query used
    monkeypatch.setattr("localifttt.management.commands.ifttt_review.RECIPES", few)

    text, error = review_fake()

    assert error is not None
    assert "Review › at least 12 Applets, and every query is used ✗" in text
    assert "3 Applet recipe(s); IFTTT wants at least 12" in text
    assert "no Applet uses the query current_temperature, device_history, list_devices" in text
    assert "Fix: add or fix recipes" in text


def test_the_copy_export_has_every_name_and_applet() -> None:
    identity = Identity.from_settings()
    document = copy_document(registry=registry, identity=identity)
    markdown = copy_markdown(document)

    assert document["service"]["url"] == f"https://ifttt.com/{settings.IFTTT_SERVICE_SLUG}"
    assert {t["slug"] for t in document["triggers"]} == set(registry.triggers)
    assert len(document["applets"]) == len(RECIPES)
    assert "### Device switched on" in markdown and "## Applets" in markdown

    out = StringIO()
    call_command("ifttt_copy", "--format", "json", stdout=out)
    assert json.loads(out.getvalue())["service"]["name"] == settings.SERVICE_NAME


def review_fake(*extra: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    error: CommandError | None = None
    with fake.fake_service() as url:
        try:
            call_command(
                "ifttt_review",
                *("--url", url, "--service-key", fake.SERVICE_KEY, "--user", fake.USERNAME),
                *("--password", fake.PASSWORD, "--client-id", fake.CLIENT_ID),
                *("--client-secret", fake.CLIENT_SECRET, "--service-slug", "fake"),
                *extra,
                stdout=out,
            )
        except CommandError as exc:
            error = exc
    return out.getvalue(), error


def test_a_personal_support_address_and_a_coloured_logo_block_submission(settings: Any, tmp_path: Any) -> None:
    settings.SERVICE_SUPPORT_EMAIL = "jane.doe@gmail.com"
    logo = tmp_path / "logo.svg"
    logo.write_bytes(
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><path fill="red" d="M0 0h4v4z"/></svg>'
    )
    junit = tmp_path / "review.xml"

    text, error = review_fake("--logo", str(logo), "--junit", str(junit))

    assert error is not None and "Not ready to submit" in str(error)
    assert "Review › the support email is a role address ✗" in text
    assert "free-mail domain" in text and "Fix: set SERVICE_SUPPORT_EMAIL" in text
    assert "Review › the logo is a white vector image on a transparent background ✗" in text
    assert "the fill “red”" in text
    assert "Review › the authorization page mentions IFTTT and asks for consent ✓" in text
    assert "Review › the endpoint tests pass ✓" in text
    suite = ET.fromstring(junit.read_bytes()).find("testsuite")  # noqa: S314 - our own file
    assert suite is not None and suite.get("failures") == "2"


def test_the_review_as_json(settings: Any) -> None:
    # This project's own endpoints are reviewed in CI against `make run` (.ci/run); here, a fake service.
    text, error = review_fake("--json")

    assert error is None, text
    report = json.loads(text)
    assert report["failed"] == 0
    review = [c for c in report["checks"] if c["group"] == "Review"]
    assert len(review) == 7 and all(c["outcome"] in ("passed", "warning") for c in review)
