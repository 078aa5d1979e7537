"""The README's catalog table is held against the registry, so the docs cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from protocol.registry import registry


def _catalog_section() -> str:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^### The catalog\n(.*?)(?=^#{2,3} )", readme, re.S | re.M)
    assert match, "README.md has no '### The catalog' section"
    return match.group(1)


def test_the_readme_catalog_table_names_exactly_the_declared_slugs() -> None:
    table = [line for line in _catalog_section().splitlines() if line.startswith("|")]
    assert len(table) >= 3, "the catalog section has no table"
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["triggers", "actions", "queries"]
    columns: dict[str, set[str]] = {name: set() for name in header}
    for row in table[2:]:
        for name, cell in zip(header, row.strip("|").split("|"), strict=True):
            columns[name] |= set(re.findall(r"`([a-z0-9_]+)`", cell))
    assert columns["triggers"] == set(registry.triggers)
    assert columns["actions"] == set(registry.actions)
    assert columns["queries"] == set(registry.queries)
