"""Public pages in the service's identity: the landing page at `/`, the logo and the brand colours.

The landing page is generated from the catalog and the Applet recipes, so it says what the service
does on IFTTT exactly as IFTTT shows it. It loads nothing from outside the service and needs no script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from protocol.recipes import RECIPES, Recipe
from protocol.registry import registry

# Pages served from here: nothing from outside, no script, no framing.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
DEFAULT_BRAND_COLOR = "#1f6feb"


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class LandingContent:
    triggers: list[Feature]
    queries: list[Feature]
    actions: list[Feature]
    recipes: list[Recipe]


def brand_color() -> str:
    """The configured colour if it is a plain hex colour (it goes into a stylesheet), else the default."""
    color = settings.SERVICE_BRAND_COLOR.strip()
    return color if _HEX_COLOUR.match(color) else DEFAULT_BRAND_COLOR


def landing_content() -> LandingContent:
    def features(table: Any) -> list[Feature]:
        return [Feature(s.label, s.description, tuple(f.label for f in s.fields)) for s in table.values()]

    return LandingContent(
        triggers=features(registry.triggers),
        queries=features(registry.queries),
        actions=features(registry.actions),
        recipes=list(RECIPES),
    )


@require_GET
def landing_view(request: HttpRequest) -> HttpResponse:
    response = render(request, "landing.html", {"content": landing_content()})
    response["Content-Security-Policy"] = PAGE_POLICY
    return response


@require_GET
def logo_view(request: HttpRequest) -> HttpResponse:
    """The logo from SERVICE_LOGO, as IFTTT gets it: a white SVG (pages show it on the brand colour)."""
    try:
        data = settings.SERVICE_LOGO.read_bytes()
    except OSError:
        raise Http404("No logo: set SERVICE_LOGO to an SVG file.") from None
    response = HttpResponse(data, content_type="image/svg+xml")
    # An SVG opened on its own is a document: it may not run script or load anything.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["Cache-Control"] = "public, max-age=3600"
    return response


@require_GET
def theme_view(request: HttpRequest) -> HttpResponse:
    """The brand colour as a stylesheet, since the pages' policy allows no inline style."""
    css = f":root {{ --brand: {brand_color()}; --service-brand: {brand_color()}; }}\n"
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response
