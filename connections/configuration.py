"""A connection's field configuration, as IFTTT's connection tool describes it, checked and applied.

Each field of a feature's trigger, query or action is either set by us (a fixed value, or a default a
run may override, as in IFTTT's Hue colour example) or customizable by the user (with a default). A
run (a script's `runAction`/`performQuery`, or the backend) sends the values set by us, then the
per-run `fields` overrides the rules allow; an override they do not allow refuses the whole call
before anything is sent, with IFTTT's own 422 shape, so a script handles it as it would IFTTT's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from protocol.registry import registry

from .models import Connection, ConnectionField, FieldVisibility, StepKind

STEP_ID = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")


@dataclass
class FieldRuleError(Exception):
    """Per-run fields the connection's configuration does not allow: {field: why}."""

    step_id: str
    problems: dict[str, str]

    def __str__(self) -> str:
        return "; ".join(f"{name}: {why}" for name, why in self.problems.items())

    def as_ifttt_error(self) -> dict[str, Any]:
        """IFTTT's 422 body, so a script reads it as it would IFTTT's own answer."""
        return {
            "type": "error",
            "code": "invalid_parameters",
            "message": f"Not sent: the connection's configuration does not allow these fields for {self.step_id}.",
            "details": [{"parameter": f"/fields/{name}", "message": why} for name, why in self.problems.items()],
        }


def _feature_rules(rules: Iterable[ConnectionField], feature_id: str) -> list[ConnectionField]:
    """The rules of `feature_id` if it has this step, else of the first feature that has it.

    A script runs in the context of the feature whose trigger fired; a call without one takes the
    connection's first feature, as IFTTT does without a `user_feature_id`.
    """
    rules = list(rules)
    features = list(dict.fromkeys(rule.feature_id for rule in rules))
    if not features:
        return []
    chosen = feature_id if feature_id in features else features[0]
    return [rule for rule in rules if rule.feature_id == chosen]


def fields_apply(
    *, connection: Connection, kind: str, step_id: str, feature_id: str = "", overrides: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The `fields` to send: values set by us, then the overrides the rules allow.

    None when nothing is to be sent (no values of ours, no overrides). A step the connection does not
    configure passes the overrides through: IFTTT's own rules then apply. Raises FieldRuleError.
    """
    overrides = overrides or {}
    rules = _feature_rules(connection.fields.filter(kind=kind, step_id=step_id), feature_id)
    if not rules:
        return dict(overrides) or None
    by_field = {rule.field_id: rule for rule in rules}
    fields: dict[str, Any] = {
        rule.field_id: rule.value for rule in rules if rule.visibility == FieldVisibility.SET_BY_YOU and rule.value
    }
    problems: dict[str, str] = {}
    for name, value in overrides.items():
        rule = by_field.get(name)
        if rule is None:
            known = ", ".join(sorted(by_field)) or "none"
            problems[name] = f"not a field of {step_id} in this connection (its fields: {known})."
        elif not rule.overridable:
            if rule.visibility == FieldVisibility.SET_BY_YOU:
                problems[name] = f"set by the connection to {rule.value!r}; a run may not change it."
            else:
                problems[name] = "chosen by the user; a run may not change it."
        else:
            fields[name] = value
    if problems:
        raise FieldRuleError(step_id, problems)
    return fields or None


def field_rule_problems(rule: ConnectionField) -> dict[str, str]:
    """What is wrong with one configured field, by form field name; empty when it is fine."""
    problems: dict[str, str] = {}
    if not STEP_ID.match(rule.step_id or ""):
        problems["step_id"] = "Write the step as service.slug, e.g. “smarthome.set_light_color”."
        return problems
    if rule.visibility == FieldVisibility.SET_BY_YOU and not rule.overridable and not rule.value:
        problems["value"] = "A field set by you and fixed needs a value."
    service, slug = rule.step_id.split(".", 1)
    if service != settings.IFTTT_SERVICE_SLUG:
        return problems  # another service's fields are IFTTT's to check
    tables: dict[str, dict[str, Any]] = {
        StepKind.TRIGGER: registry.triggers,
        StepKind.QUERY: registry.queries,
        StepKind.ACTION: registry.actions,
    }
    table = tables.get(rule.kind, {})
    spec = table.get(slug)
    if spec is None:
        choices = ", ".join(sorted(table)) or "none"
        problems["step_id"] = f"This service has no {rule.kind} “{slug}”. Its {rule.kind}s: {choices}."
        return problems
    field_spec = spec.field(rule.field_id)
    if field_spec is None:
        choices = ", ".join(f.slug for f in spec.fields) or "none"
        problems["field_id"] = f"{rule.step_id} has no field “{rule.field_id}”. Its fields: {choices}."
    elif rule.value and field_spec.kind == "text" and field_spec.validate is not None:
        try:
            message = field_spec.validate(None, rule.value)
        except Exception:  # a check that needs a user cannot run here; IFTTT's run will tell
            message = None
        if message:
            problems["value"] = message
    return problems
