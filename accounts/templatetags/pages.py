"""Filters the pages (people's and support's) share, so every time reads the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template

from accounts import formatting

register = template.Library()


@register.filter
def when(at: datetime | None, empty: str = "never") -> str:
    return formatting.when(at, empty=empty)


@register.filter
def expiry(at: datetime | None) -> str:
    return formatting.expiry(at)


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, ()) if mapping else ()
