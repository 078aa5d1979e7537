"""The protocol core's writes: preparing IFTTT's endpoint tests."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from protocol.access import ifttt_test_token_issue

from .fixtures import EndpointTestsFixture, endpoint_tests_fixture_prepare
from .registry import registry


def endpoint_tests_samples(fixture: EndpointTestsFixture) -> dict[str, Any]:
    """Every sample IFTTT's endpoint tests use, generated from the registry."""
    triggers = {slug: spec.sample(fixture) for slug, spec in registry.triggers.items()}
    validations = {
        slug: spec.validation_samples(fixture)
        for slug, spec in registry.triggers.items()
        if spec.validation_samples is not None
    }
    skipping = {
        slug: spec.skip_sample(fixture) for slug, spec in registry.actions.items() if spec.skip_sample is not None
    }
    return {
        "triggers": triggers,
        "triggerFieldValidations": validations,
        "actions": {slug: spec.sample(fixture) for slug, spec in registry.actions.items()},
        "actionRecordSkipping": skipping,
        "queries": {slug: spec.sample(fixture) for slug, spec in registry.queries.items()},
    }


@transaction.atomic
def endpoint_tests_prepare() -> dict[str, Any]:
    """Create or refresh the isolated test user, and return a token for it and the samples.

    Calling it again is harmless: the fixture is reset, not duplicated. Each call answers a fresh token
    (only digests are stored, so an earlier one cannot be read back); earlier ones keep working for a day.
    """
    fixture = endpoint_tests_fixture_prepare()
    token = ifttt_test_token_issue(user=fixture.user)
    return {"accessToken": token.token, "samples": endpoint_tests_samples(fixture)}
