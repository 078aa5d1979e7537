"""The Applet recipes are buildable on IFTTT: every slug, field and ingredient they use is in the catalog."""

from __future__ import annotations

from dataclasses import replace

from protocol.recipes import MIN_RECIPES, RECIPES, QueryStep, queries_without_recipe, recipe_devices, recipe_problems
from protocol.registry import registry


def test_the_recipes_match_the_catalog() -> None:
    assert recipe_problems(registry) == []
    assert len(RECIPES) >= MIN_RECIPES
    assert queries_without_recipe(registry) == []


def test_every_trigger_and_action_has_a_recipe() -> None:
    assert {r.trigger for r in RECIPES} == set(registry.triggers)
    assert {r.action for r in RECIPES} == set(registry.actions)


def test_a_broken_recipe_is_named_with_its_problem() -> None:
    first = RECIPES[0]
    broken = (
        replace(first, trigger_fields={"device": "Porch sensor", "colour": "red"}),
        replace(first, slug="b", action_fields={"device": "{{no_such_thing}}", "temperature": "21"}),
        replace(first, slug="c", queries=(QueryStep("no_such_query"),)),
        replace(first, slug="d", action_fields={"device": "Living room thermostat"}),
    )
    problems = "\n".join(recipe_problems(registry, broken))

    assert "the trigger has no field 'colour'" in problems
    assert "uses {{no_such_thing}}, which no step provides" in problems
    assert "no query 'no_such_query'" in problems
    assert "the action field 'temperature' needs a value" in problems
    assert "two recipes share the name" in problems


def test_the_demo_homes_have_every_device_the_recipes_pick() -> None:
    from accounts.management.commands.seed_demo import DEMO_DEVICES

    assert recipe_devices() <= {spec["name"] for spec in DEMO_DEVICES}
