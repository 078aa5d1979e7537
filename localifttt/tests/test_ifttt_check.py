"""`ifttt_check` finds real faults: it passes a correct service and names each deliberate fault.

The services under test are real HTTP servers on the test ports: the fake service in
`fake_service.py` (correct unless told to break one thing) and this project, served in-process.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from django.core.management import CommandError, call_command

from localifttt.runner import AuthOptions, run_checks
from localifttt.suite import CheckResult
from localifttt.tests import fake_service as fake
from localifttt.tests.ports import free_port

FAKE_AUTH = AuthOptions(fake.USERNAME, fake.PASSWORD, fake.CLIENT_ID, fake.CLIENT_SECRET, fake.REDIRECT_URI)

# Each fault, and the checks (group › name) that must report it.
EXPECTED_FAILURES: dict[str, set[str]] = {
    "wrong_order": {"Triggers › new_thing › items are newest first"},
    "unstable_ids": {"Triggers › new_thing › ids are stable across polls"},
    "ignores_limit": {
        "Triggers › new_thing › returns no items with limit 0",
        "Triggers › new_thing › returns the newest 1 with limit 1",
    },
    "two_items": {"Triggers › new_thing › returns at least three items"},
    "string_timestamps": {"Triggers › new_thing › items have meta.id (text) and meta.timestamp (integer seconds)"},
    "millisecond_timestamps": {"Triggers › new_thing › items have meta.id (text) and meta.timestamp (integer seconds)"},
    "plain_errors": {
        "Status › returns 401 with a wrong service key",
        "Triggers › new_thing › returns 400 when triggerFields is missing",
        "Malformed requests › malformed JSON to an action returns 400",
    },
    "no_skip": {"Actions › create_thing › skips the actionRecordSkipping sample (400, status SKIP)"},
    "status_ignores_key": {
        "Status › returns 401 with a wrong service key",
        "Status › returns 401 without a service key",
    },
    "setup_ignores_key": {"Test setup › returns 401 with a wrong service key"},
    "token_ignored": {
        "User info › returns 401 with a bad access token",
        "Triggers › new_thing › returns 401 with a bad access token",
        "Actions › create_thing › returns 401 with a bad access token",
    },
    "fields_optional": {"Triggers › new_thing › returns 400 when triggerFields is missing"},
    "rejects_extra_data": {"Triggers › new_thing › with extra data", "Actions › create_thing › with extra data"},
    "no_charset": {"Triggers › new_thing › answers application/json; charset=utf-8"},
    "malformed_json_500": {"Malformed requests › malformed JSON to a trigger returns 400"},
    "unknown_slug_500": {"Unknown endpoints › an unknown trigger returns 404"},
    "deep_options": {"Triggers › new_thing › field category › options are well formed and include the sample"},
    "validation_always_valid": {
        "Triggers › new_thing › field category › rejects the invalid sample with a message",
        "Triggers › new_thing › contextual validation rejects the invalid category",
    },
    "action_object": {"Actions › create_thing › returns one record with an id"},
    "cursor_on_last_page": {"Queries › list_things › walks the cursor to a last page without a cursor"},
    "no_cursor": {"Queries › list_things › returns one row and a cursor with limit 1"},
    "cursor_skips_row": {"Queries › list_things › walks the cursor to a last page without a cursor"},
    "forged_cursor_accepted": {"Queries › list_things › returns 400 for a forged cursor"},
    "delete_identity_404": {"Triggers › new_thing › deletes the trigger identity"},
    "deny_grants": {"Authentication › denying consent redirects to IFTTT with error=access_denied"},
    "state_dropped": {"Authentication › allowing consent redirects to IFTTT with a code and the state"},
    "code_reusable": {"Authentication › a used code cannot be exchanged again"},
    "refresh_rotates_immediately": {"Authentication › Ensure older refresh token does not expire immediately"},
    "revoke_ignored": {"Authentication › a revoked token gets 401 from user/info"},
}


def check_fake(*faults: str) -> list[CheckResult]:
    with fake.fake_service(*faults) as url:
        return run_checks(base_url=url, service_key=fake.SERVICE_KEY, auth=FAKE_AUTH)


def failed_titles(results: list[CheckResult]) -> set[str]:
    return {r.title for r in results if r.outcome == "failed"}


def test_every_fault_of_the_fake_service_has_an_expectation() -> None:
    assert set(EXPECTED_FAILURES) == set(fake.FAULTS)


def test_a_correct_service_passes_every_check() -> None:
    results = check_fake()

    assert failed_titles(results) == set()
    passed = {r.title for r in results if r.outcome == "passed"}
    # The whole protocol was exercised, not skipped.
    for title in (
        "Triggers › new_thing › returns at least three items",
        "Triggers › new_thing › contextual validation accepts the valid samples",
        "Actions › create_thing › skips the actionRecordSkipping sample (400, status SKIP)",
        "Queries › list_things › walks the cursor to a last page without a cursor",
        "Authentication › Ensure older refresh token does not expire immediately",
        "Authentication › a revoked token gets 401 from user/info",
    ):
        assert title in passed
    skipped = [r.title for r in results if r.outcome == "skipped"]
    assert skipped == ["Actions › create_thing › field title › options are well formed and include the sample"]


def test_a_service_without_oauth_is_checked_with_its_service_key() -> None:
    with fake.fake_service(oauth=False) as url:
        results = run_checks(base_url=url, service_key=fake.SERVICE_KEY)

    assert failed_titles(results) == set()
    titles = {r.title for r in results}
    assert not any(title.startswith("User info") for title in titles)
    # Without OAuth the service key guards every call, so a wrong key is what must be refused.
    assert "Triggers › new_thing › returns 401 with a bad service key" in titles


@pytest.mark.parametrize("fault", sorted(EXPECTED_FAILURES))
def test_each_fault_is_reported_with_its_request_and_response(fault: str) -> None:
    results = check_fake(fault)

    # What IFTTT does not document is reported as a warning (see test_undocumented_checks_only_warn).
    reported = {r.title for r in results if r.outcome in ("failed", "warning")}
    assert EXPECTED_FAILURES[fault] <= reported, f"{fault}: {fake.FAULTS[fault]} was not reported"
    for result in results:
        if result.outcome == "failed":
            assert result.message
            assert result.exchanges, f"{result.title} shows no request"
            # Keys and tokens never appear whole in a report (they end up in CI logs).
            assert all(fake.SERVICE_KEY not in e.describe() for e in result.exchanges)
            assert all(e.status is not None for e in result.exchanges)


def test_the_command_prints_one_line_per_check_and_fails_with_the_evidence(tmp_path: Any) -> None:
    junit = tmp_path / "ifttt-check.xml"
    out = StringIO()
    with fake.fake_service("wrong_order", "no_skip") as url, pytest.raises(CommandError) as failure:
        call_command("ifttt_check", "--url", url, "--service-key", fake.SERVICE_KEY, "--junit", str(junit), stdout=out)

    text = out.getvalue()
    assert "Triggers › new_thing › returns at least three items ✓" in text
    assert "Triggers › new_thing › items are newest first ✗" in text
    # The failure shows what was sent and what came back.
    failure_block = text.split("items are newest first ✗", 1)[1].split("Triggers › new_thing › item ids", 1)[0]
    assert "→ POST http://127.0.0.1:" in failure_block and "/ifttt/v1/triggers/new_thing" in failure_block
    assert "← 200" in failure_block
    assert "2 failed" in str(failure.value)

    suite = ET.fromstring(junit.read_bytes()).find("testsuite")  # noqa: S314 - our own file
    assert suite is not None and suite.get("failures") == "2"
    failures = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert sorted(str(name) for name in failures) == [
        "items are newest first",
        "skips the actionRecordSkipping sample (400, status SKIP)",
    ]


def test_the_command_reports_json_for_ci() -> None:
    out = StringIO()
    with fake.fake_service() as url:
        call_command(
            "ifttt_check",
            "--url",
            url,
            "--service-key",
            fake.SERVICE_KEY,
            "--auth",
            "--user",
            fake.USERNAME,
            "--password",
            fake.PASSWORD,
            "--client-id",
            fake.CLIENT_ID,
            "--client-secret",
            fake.CLIENT_SECRET,
            "--service-slug",
            "fake",
            "--json",
            stdout=out,
        )

    report = json.loads(out.getvalue())
    assert report["failed"] == 0 and report["passed"] > 50
    assert any(c["check"].startswith("Authentication › ") and c["outcome"] == "passed" for c in report["checks"])


def test_a_wrong_password_is_reported_as_a_sign_in_problem() -> None:
    auth = AuthOptions(fake.USERNAME, "not-the-password", fake.CLIENT_ID, fake.CLIENT_SECRET, fake.REDIRECT_URI)
    with fake.fake_service() as url:
        results = run_checks(base_url=url, service_key=fake.SERVICE_KEY, auth=auth)

    allow = next(r for r in results if r.name.startswith("allowing consent"))
    assert allow.outcome == "failed"
    assert "user name or password" in allow.message


def test_auth_without_credentials_says_what_to_give() -> None:
    with pytest.raises(CommandError, match="--user and --password"):
        call_command("ifttt_check", "--url", f"http://127.0.0.1:{free_port()}", "--auth")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_this_project_passes_the_endpoint_and_authentication_tests(make_user: Any) -> None:
    make_user("alice")
    out = StringIO()

    call_command(
        "ifttt_check",
        "--port",
        str(free_port()),
        "--auth",
        "--user",
        "alice",
        "--password",
        "correct-horse-battery",
        stdout=out,
    )

    text = out.getvalue()
    assert "All clear" in text, text
    assert "Triggers › device_switched_on › returns at least three items ✓" in text
    assert "Authentication › Ensure older refresh token does not expire immediately ✓" in text
