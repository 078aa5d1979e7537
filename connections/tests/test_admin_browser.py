"""A developer edits a connection script in the admin and uses "Test run", in a real browser."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from connections.models import Connection, ScriptRun

pytestmark = [pytest.mark.services, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct-horse-battery"

SCRIPT = """const title = Trigger.ingredients.title;
console.log("liked:", title, "at", Meta.currentUserTime.format("HH:mm"));
const found = await performQuery("youtube.get_videos_from_search", {fields: {search_query: title}, limit: 2});
for (const video of found.responseBody.data) {
  runAction("sms.send_me_text", {fields: {message: `${video.title} ${video.url}`}});
}"""


def _free_port() -> int:
    for port in range(8549, 8499, -1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("No free port in 8500-8549")


@pytest.fixture
def live_site(transactional_db: Any) -> Iterator[str]:
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer(f"127.0.0.1:{_free_port()}", start=False)
    server._live_server_modified_settings.enable()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        server._live_server_modified_settings.disable()


@pytest.fixture
def data(live_site: str, django_user_model: Any) -> Connection:
    django_user_model.objects.create_superuser("dev", "dev@example.com", PASSWORD)
    return Connection.objects.create(connection_id="conn-1", name="Liked videos to texts", script="")


@pytest.fixture
def page(data: Connection, require_chromium: str, live_site: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require_chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(20_000)
            tab = context.new_page()
            outside: list[str] = []
            tab.on("request", lambda r: None if r.url.startswith(live_site) else outside.append(r.url))
            yield tab
            assert outside == []
        finally:
            # While Playwright's loop runs, the test's own queries used a connection of their own;
            # close it here, in the same context, or it outlives the test database.
            from django.db import connections

            connections.close_all()
            browser.close()


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
    samples = {"youtube.get_videos_from_search": [{"title": f"V{i}", "url": f"https://v/{i}"} for i in range(3)]}
    page.fill("#id_query_samples", json.dumps(samples))
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
    assert "does not compile" in page.inner_text("#run-error")
