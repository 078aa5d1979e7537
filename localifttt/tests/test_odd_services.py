"""`ifttt_check` is right about services other than this one: valid but unusual behaviour is no failure.

Each test runs the checks against the fake service with one quirk other IFTTT services show.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from localifttt.client import mask_secret
from localifttt.runner import run_checks
from localifttt.suite import CheckResult
from localifttt.tests import fake_service as fake


def outcomes(results: list[CheckResult], *outcome: str) -> dict[str, str]:
    return {r.title: r.message for r in results if r.outcome in outcome}


def check(*quirks: str, **options: float) -> list[CheckResult]:
    with fake.fake_service(*quirks) as url:
        return run_checks(base_url=url, service_key=fake.SERVICE_KEY, **options)


def test_a_keep_alive_connection_the_service_closed_is_replaced_not_failed() -> None:
    results = check("closes_idle_connections")

    assert outcomes(results, "failed") == {}
    notes = [e.note for r in results for e in r.exchanges if e.note]
    assert notes and "sent again on a new one" in notes[0]


def test_identical_events_in_one_second_keep_their_ids() -> None:
    results = check("identical_events")

    assert outcomes(results, "failed") == {}
    assert "Triggers › new_thing › ids are stable across polls" not in outcomes(results, "warning")


def test_ids_that_change_between_polls_still_fail() -> None:
    failed = outcomes(check("unstable_ids"), "failed")
    assert "Triggers › new_thing › ids are stable across polls" in failed


def test_a_long_query_history_is_walked_to_its_end() -> None:
    results = check("long_history")

    assert outcomes(results, "failed") == {}
    assert outcomes(results, "passed").keys() >= {
        "Queries › list_things › walks the cursor to a last page without a cursor"
    }


def test_a_request_that_never_answers_times_out_and_the_run_goes_on() -> None:
    results = check("hanging_delete", timeout=0.5)

    failed = outcomes(results, "failed")
    assert list(failed) == ["Triggers › new_thing › deletes the trigger identity"]
    assert "no answer within 0.5 s" in failed["Triggers › new_thing › deletes the trigger identity"]
    # The checks after it still ran.
    assert any(title.startswith("Queries ›") for title in outcomes(results, "passed"))


def test_the_run_budget_reports_what_was_not_reached() -> None:
    out = StringIO()
    with fake.fake_service("hanging_delete") as url, pytest.raises(CommandError) as failure:
        call_command(
            "ifttt_check",
            "--url",
            url,
            "--service-key",
            fake.SERVICE_KEY,
            "--timeout",
            "1",
            "--budget",
            "1",
            stdout=out,
        )

    assert "not run" in str(failure.value)
    assert "(not run: the run's time budget of 1 s ran out before this check)" in out.getvalue()


@pytest.mark.parametrize(
    ("quirk", "title"),
    [
        ("no_channel_key", "Status › accepts the legacy IFTTT-Channel-Key header"),
        (
            "sample_not_in_options",
            "Triggers › new_thing › field category › options are well formed and include the sample",
        ),
        ("forged_cursor_accepted", "Queries › list_things › returns 400 for a forged cursor"),
    ],
)
def test_undocumented_checks_only_warn_and_say_so(quirk: str, title: str) -> None:
    results = check(quirk)

    assert outcomes(results, "failed") == {}
    warning = outcomes(results, "warning")[title]
    assert "IFTTT does not document this as a requirement" in warning


def test_short_keys_are_masked_too() -> None:
    assert mask_secret("short-key") == "… (9 characters)"
    assert mask_secret("0123456789abcdefXYZ") == "01234567…"


def test_a_wrong_key_masks_it_and_says_the_rest_did_not_run() -> None:
    out = StringIO()
    with fake.fake_service() as url, pytest.raises(CommandError) as failure:
        call_command("ifttt_check", "--url", url, "--service-key", "wrong-key", stdout=out)

    text = out.getvalue()
    assert "wrong-key" not in text
    assert "IFTTT-Service-Key: … (9 characters)" in text
    assert "Triggers, actions and queries › every check of the samples · (not run: test/setup gave no samples" in text
    assert "1 not run" in str(failure.value) and "did not run at all" in str(failure.value)
