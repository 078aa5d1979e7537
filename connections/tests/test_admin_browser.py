"""A developer edits a connection script in the admin and uses "Test run", in a real browser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from connections.models import Connection, ScriptRun

pytestmark = [pytest.mark.services, pytest.mark.slow]

PASSWORD = "correct-horse-battery"

SCRIPT = """const title = Trigger.ingredients.title;
console.log("liked:", title, "at", Meta.currentUserTime.format("HH:mm"));
performQuery("youtube.get_videos_from_search", {fields: {search_query: title}, limit: 2}).then((found) => {
  for (const video of found.responseBody.data) {
    runAction("sms.send_me_text", {fields: {message: `${video.title} ${video.url}`}});
  }
});"""


@pytest.fixture
def data(live_site: str, django_user_model: Any) -> Connection:
    django_user_model.objects.create_superuser("dev", "dev@example.com", PASSWORD)
    return Connection.objects.create(connection_id="conn-1", name="Liked videos to texts", script="")


@pytest.fixture
def page(data: Connection, live_site: str, chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    context.set_default_timeout(20_000)
    tab = context.new_page()
    outside: list[str] = []
    tab.on("request", lambda r: None if r.url.startswith(live_site) else outside.append(r.url))
    yield tab
    assert outside == [], "the admin loaded something from outside the service"


def test_edit_a_script_and_test_run_it(page: Any, live_site: str, data: Connection) -> None:
    page.goto(f"{live_site}/admin/login/?next=/admin/connections/connection/{data.pk}/change/")
    page.fill("#id_username", "dev")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.fill("#id_script", SCRIPT)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    page.click("text=Test run")
    page.fill("#id_ingredients", json.dumps({"title": "Street Art"}))
    rows = [{"title": f"V{i}", "url": f"https://v/{i}"} for i in range(2)]
    page.fill("#id_answers", "youtube.get_videos_from_search=200:" + json.dumps({"data": rows}))
    page.fill("#id_timezone", "Tokyo")
    page.click("input[name=run]")

    assert page.inner_text("#outcome").startswith("Outcome: Succeeded")
    assert "liked: Street Art at" in page.inner_text("#run-logs")
    calls = json.loads(page.inner_text("#run-calls"))
    assert [c["id"] for c in calls] == ["youtube.get_videos_from_search", "sms.send_me_text", "sms.send_me_text"]
    assert [c["body"]["fields"]["message"] for c in calls[1:]] == ["V0 https://v/0", "V1 https://v/1"]
    assert all(c["sent"] is False for c in calls)

    run = ScriptRun.objects.get()
    assert run.is_test
    assert run.script.replace("\r\n", "\n") == SCRIPT  # the saved edit is what ran


def test_a_broken_script_shows_why(page: Any, live_site: str, data: Connection) -> None:
    data.script = "const x = ;"
    data.save()
    page.goto(f"{live_site}/admin/login/?next=/admin/connections/connection/{data.pk}/test-run/")
    page.fill("#id_username", "dev")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.click("input[name=run]")
    assert "Failed" in page.inner_text("#outcome")
    assert "SyntaxError: Unexpected token" in page.inner_text("#run-error")
    assert "^" in page.inner_text("#run-error-line")
