"""Every operation in the OpenAPI schema, fuzzed from the schema against the served site.

Schemathesis generates requests for each operation from its description (bodies, fields, path
parameters) and sends them over real HTTP with real credentials: the test user's token, the service
key, a device key. A server error, an answer with a status the schema does not list, or a body or
content type that does not match it, fails the test.

`make test` runs a smoke of it: API_FUZZ_EXAMPLES (default 2) requests per operation within
API_FUZZ_SECONDS (default 15; each operation gets an equal slice, and past it sends no more examples,
so a slow machine fuzzes less rather than running over). CI runs it again on PostgreSQL with more
examples per operation and a larger budget.
"""

from __future__ import annotations

import os
import time
from typing import Any

import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import SERVICE_KEY
from devices.models import DeviceKind
from devices.services import device_api_key_issue, device_create
from protocol.services import endpoint_tests_prepare

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "2"))
SECONDS = float(os.environ.get("API_FUZZ_SECONDS", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _credentials(operation: Any, keys: dict[str, str]) -> dict[str, str]:
    if operation.path.startswith("/api/v1/device/"):
        return {"Authorization": f"Device {keys['device']}"}
    security = operation.definition.raw.get("security") or []
    if any("serviceAuth" in requirement for requirement in security):
        return {"IFTTT-Service-Key": SERVICE_KEY}
    return {"Authorization": f"Bearer {keys['token']}"}


def _fuzz(operation: Any, base_url: str, headers: dict[str, str], session: requests.Session, *, until: float) -> None:
    sent = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=bool(os.environ.get("API_FUZZ_DERANDOMIZE")),
        # No shrinking: the first failing request is reported as sent, within the time budget.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        # Each operation has its slice of the time budget; past it, examples are generated but not sent
        # (the first always is), so a slow machine fuzzes less rather than running over.
        if sent and time.monotonic() > until:
            return
        sent += 1
        case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=CHECKS)

    run()


def test_every_operation_answers_as_documented(live_site: str) -> None:
    from accounts.models import User

    token = endpoint_tests_prepare()["accessToken"]
    owner = User.objects.get(is_ifttt_test_user=True)
    lamp = device_create(owner=owner, name="Fuzzed lamp", kind=DeviceKind.LIGHT, room="Lab")
    keys = {"token": token, "device": device_api_key_issue(device=lamp)}
    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(raw)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40, "the schema lost its catalog operations"

    failures: list[str] = []
    started = time.monotonic()
    with requests.Session() as session:
        for done, operation in enumerate(operations):
            until = started + SECONDS * (done + 1) / len(operations)
            try:
                _fuzz(operation, live_site, _credentials(operation, keys), session, until=until)
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    assert not failures, "\n\n".join(failures)
