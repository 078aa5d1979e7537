"""Template context every page shares."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def service(request: HttpRequest) -> dict[str, Any]:
    """The service's identity (name, description, support email, brand colour, IFTTT slug) as `service`."""
    return {
        "service": {
            "name": settings.SERVICE_NAME,
            "description": settings.SERVICE_DESCRIPTION,
            "support_email": settings.SERVICE_SUPPORT_EMAIL,
            "brand_color": settings.SERVICE_BRAND_COLOR,
            "slug": settings.IFTTT_SERVICE_SLUG,
            "ifttt_url": f"https://ifttt.com/{settings.IFTTT_SERVICE_SLUG}",
        }
    }
