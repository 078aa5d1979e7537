"""The service's copy, as IFTTT's platform asks for it, and the rules a reviewer reads it by.

Everything a user reads on IFTTT comes from here: the service's name and description, and each
trigger, query and action's name, description, field labels, helper text and ingredients. IFTTT's
review fails copy that is "incomplete, confusing, contains placeholders, styling, or grammar issues";
IFTTT does not publish a style guide for names, so the rules below follow what IFTTT's own services
do (sentence-case names, "This trigger fires …" descriptions) and ask for consistency everywhere else.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

from django.conf import settings

from protocol.recipes import RECIPES, Recipe
from protocol.registry import Declaration, QuerySpec, Registry, TriggerSpec

Kind = Literal["name", "description", "field label", "helper text", "ingredient name", "ingredient example"]

# Words written in capitals on purpose; anything else in capitals reads as shouting (styling).
ACRONYMS = frozenset({"IFTTT", "ID", "URL", "API", "HTTP", "HTTPS", "JSON", "LED", "HVAC", "UTC", "RGB", "TV"})
PLACEHOLDER = re.compile(r"\b(todo|tbd|fixme|lorem|ipsum|x{3,}|changeme|placeholder)\b|\{\{|\}\}|<\s*insert", re.I)
MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|\*\*|__|`|\[[^\]]*\]\([^)]*\)|^\s*#{1,6}\s|&[a-zA-Z]+;|&#\d+;|\\n|\n|\t")
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
SHOUTING = re.compile(r"\b[A-Z]{3,}\b")
DESCRIPTION_OPENINGS = {"trigger": "This trigger ", "action": "This action ", "query": "This query "}


@dataclass(frozen=True)
class CopyItem:
    where: str  # e.g. "Trigger “Device switched on”"
    kind: Kind
    text: str


@dataclass(frozen=True)
class Identity:
    name: str
    description: str
    support_email: str
    slug: str
    brand_color: str

    @classmethod
    def from_settings(cls) -> Identity:
        return cls(
            name=settings.SERVICE_NAME,
            description=settings.SERVICE_DESCRIPTION,
            support_email=settings.SERVICE_SUPPORT_EMAIL,
            slug=settings.IFTTT_SERVICE_SLUG,
            brand_color=settings.SERVICE_BRAND_COLOR,
        )


def _declarations(registry: Registry) -> list[tuple[str, Declaration]]:
    return [
        *(("trigger", spec) for spec in registry.triggers.values()),
        *(("query", spec) for spec in registry.queries.values()),
        *(("action", spec) for spec in registry.actions.values()),
    ]


def copy_items(*, registry: Registry, identity: Identity) -> list[CopyItem]:
    items = [
        CopyItem("Service", "name", identity.name),
        CopyItem("Service", "description", identity.description),
    ]
    for what, spec in _declarations(registry):
        where = f"{what.capitalize()} {spec.slug}"
        items += [CopyItem(where, "name", spec.label), CopyItem(where, "description", spec.description)]
        for field in spec.fields:
            items.append(CopyItem(f"{where} › field {field.slug}", "field label", field.label))
            items.append(CopyItem(f"{where} › field {field.slug}", "helper text", field.helper_text))
        if isinstance(spec, TriggerSpec | QuerySpec):
            for ingredient in spec.ingredients:
                items.append(CopyItem(f"{where} › ingredient {ingredient.slug}", "ingredient name", ingredient.label))
                items.append(
                    CopyItem(f"{where} › ingredient {ingredient.slug}", "ingredient example", ingredient.example)
                )
    return items


def _sentence_case_problem(text: str, proper: set[str]) -> str | None:
    words = re.findall(r"[A-Za-z][A-Za-z'’-]*", text)
    if words and not words[0][0].isupper():
        return "should start with a capital letter"
    for word in words[1:]:
        if word[0].isupper() and not word.isupper() and word not in proper:
            return f"is not in sentence case (“{word}”): IFTTT's names capitalise only the first word"
    return None


def item_problems(item: CopyItem, *, proper: set[str]) -> list[str]:
    """What a reviewer would send back about one piece of copy."""
    text = item.text
    if not text.strip():
        if item.kind == "helper text":
            return ["is empty: a helper text tells the user what to choose or type"]
        return ["is empty"]
    problems: list[str] = []
    if PLACEHOLDER.search(text):
        problems.append(f"contains a placeholder (“{PLACEHOLDER.search(text).group(0)}”)")  # type: ignore[union-attr]
    if MARKUP.search(text):
        problems.append(f"contains markup or a line break (“{MARKUP.search(text).group(0)!s}”): IFTTT shows plain text")  # type: ignore[union-attr]
    if EMOJI.search(text):
        problems.append("contains an emoji: IFTTT's copy is plain words")
    shouted = [w for w in SHOUTING.findall(text) if w not in ACRONYMS and w not in proper]
    if shouted:
        problems.append(f"shouts in capitals (“{shouted[0]}”)")
    if text != text.strip() or "  " in text:
        problems.append("has stray spaces")
    if item.kind == "ingredient example":
        return problems
    if item.kind in ("name", "field label", "ingredient name"):
        if text.rstrip().endswith((".", "!", ":", ";")):
            problems.append("ends with punctuation: names and labels do not")
        problem = _sentence_case_problem(text, proper)
        if problem:
            problems.append(problem)
        if item.kind == "name" and len(text) > 60:
            problems.append(f"is {len(text)} characters long: keep names short enough to read at a glance (60)")
    else:  # descriptions and helper text are sentences
        if not text[0].isupper():
            problems.append("should start with a capital letter, as a sentence")
        if not text.rstrip().endswith((".", "?")):
            problems.append("should end with a full stop, as a sentence")
    if item.kind == "description" and item.where != "Service":
        what = item.where.split(" ", 1)[0].lower()
        opening = DESCRIPTION_OPENINGS[what]
        if not text.startswith(opening):
            problems.append(f"should open with “{opening.strip()} …”, as every {what} description does on IFTTT")
    return problems


def copy_problems(items: list[CopyItem], *, identity: Identity) -> list[str]:
    """Every problem, one line each: “where (kind) problem”, then the duplicates."""
    proper = set(re.findall(r"[A-Za-z][A-Za-z'’-]*", identity.name)) | {"Wi-Fi", "Celsius", "Fahrenheit"}
    problems = [
        f"{item.where} {item.kind} “{item.text}” {problem}"
        for item in items
        for problem in item_problems(item, proper=proper)
    ]
    names = Counter(item.text.strip().lower() for item in items if item.kind == "name" and item.where != "Service")
    for name, count in sorted(names.items()):
        if name and count > 1:
            problems.append(f"{count} triggers, queries or actions share the name “{name}”: each needs its own")
    scoped: dict[tuple[str, str], Counter[str]] = {}
    for item in items:
        if item.kind in ("field label", "ingredient name"):
            owner = item.where.split(" › ")[0]
            scoped.setdefault((owner, item.kind), Counter())[item.text.strip().lower()] += 1
    for (owner, kind), counts in sorted(scoped.items()):
        for label, count in sorted(counts.items()):
            if label and count > 1:
                problems.append(f"{owner}: {count} of its {kind}s read “{label}”, so a user cannot tell them apart")
    return problems


# --- the export ------------------------------------------------------------------------------------
def copy_document(*, registry: Registry, identity: Identity, recipes: tuple[Recipe, ...] = RECIPES) -> dict[str, Any]:
    """All the copy to paste into IFTTT's platform, in the platform's order."""

    def fields(spec: Declaration) -> list[dict[str, Any]]:
        return [
            {"slug": f.slug, "label": f.label, "type": f.kind, "helper_text": f.helper_text, "required": f.required}
            for f in spec.fields
        ]

    def ingredients(spec: TriggerSpec | QuerySpec) -> list[dict[str, Any]]:
        return [{"slug": i.slug, "name": i.label, "type": i.kind, "example": i.example} for i in spec.ingredients]

    return {
        "service": {
            "name": identity.name,
            "description": identity.description,
            "support_email": identity.support_email,
            "brand_color": identity.brand_color,
            "slug": identity.slug,
            "url": f"https://ifttt.com/{identity.slug}",
        },
        "triggers": [
            {
                "slug": s.slug,
                "name": s.label,
                "description": s.description,
                "fields": fields(s),
                "ingredients": ingredients(s),
            }
            for s in registry.triggers.values()
        ],
        "queries": [
            {
                "slug": s.slug,
                "name": s.label,
                "description": s.description,
                "fields": fields(s),
                "ingredients": ingredients(s),
            }
            for s in registry.queries.values()
        ],
        "actions": [
            {"slug": s.slug, "name": s.label, "description": s.description, "fields": fields(s)}
            for s in registry.actions.values()
        ],
        "applets": [
            {
                "slug": r.slug,
                "name": r.name,
                "description": r.description,
                "trigger": {"slug": r.trigger, "fields": dict(r.trigger_fields)},
                "queries": [{"slug": q.slug, "fields": dict(q.fields)} for q in r.queries],
                "filter": asdict(r.only_if) if r.only_if else None,
                "action": {"slug": r.action, "fields": dict(r.action_fields)},
            }
            for r in recipes
        ],
    }


def copy_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def copy_markdown(document: dict[str, Any]) -> str:
    service = document["service"]
    lines = [
        f"# {service['name']} on IFTTT",
        "",
        f"- **Service name:** {service['name']}",
        f"- **Description:** {service['description']}",
        f"- **Support email:** {service['support_email']}",
        f"- **Brand colour:** {service['brand_color']}",
        f"- **Service URL:** {service['url']}",
    ]
    for section in ("triggers", "queries", "actions"):
        lines += ["", f"## {section.capitalize()}"]
        for entry in document[section]:
            lines += [
                "",
                f"### {entry['name']}",
                "",
                f"- **Slug:** `{entry['slug']}`",
                f"- **Description:** {entry['description']}",
            ]
            for field in entry["fields"]:
                helper = f" — {field['helper_text']}" if field["helper_text"] else ""
                lines.append(f"- **Field** `{field['slug']}` ({field['type']}): {field['label']}{helper}")
            for ingredient in entry.get("ingredients", []):
                lines.append(
                    f"- **Ingredient** `{ingredient['slug']}` ({ingredient['type']}): {ingredient['name']}, "
                    f"e.g. {ingredient['example']}"
                )
    lines += ["", "## Applets", ""]
    for applet in document["applets"]:
        steps = [applet["trigger"]["slug"], *(q["slug"] for q in applet["queries"]), applet["action"]["slug"]]
        lines.append(f"- **{applet['name']}** — {applet['description']} (`{' → '.join(steps)}`)")
    return "\n".join(lines) + "\n"
