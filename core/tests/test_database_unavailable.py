"""While the database cannot be reached, every endpoint answers 503 with Retry-After and a readable
message (not a 500), says so once in the log, and serves again as soon as the database is back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from conftest import SERVICE_KEY, free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_down(require_postgres: None) -> Iterator[Callable[[], None]]:
    """Point this process's connection at a port where nothing listens: a real refused connection.
    Yields the way back (the database "restarted")."""
    saved = dict(connection.settings_dict)

    def back() -> None:
        connection.settings_dict.update(saved)

    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", str(free_port())
    try:
        yield back
    finally:
        connection.close()
        back()


def test_every_kind_of_endpoint_answers_503_with_retry_after(
    database_down: Any, client: Client, caplog: Any, settings: Any
) -> None:
    settings.HEALTH_RETRY_AFTER_SECONDS = 7
    caplog.set_level(logging.WARNING)
    device = client.post(
        "/api/v1/device/events",
        data=json.dumps({"events": [{"type": "switched_on"}]}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Device dk_whatever",
    )
    ifttt = client.get("/ifttt/v1/user/info", HTTP_AUTHORIZATION="Bearer some-token")
    page = client.post("/accounts/login/", {"username": "ann", "password": "correct-horse"})
    for response in (device, ifttt, page):
        assert response.status_code == 503, response.content[:300]
        assert response.get("Retry-After") == "7", (response.request["PATH_INFO"], response.content[:300])
        assert b"database" in response.content
    assert ifttt.json()["errors"][0]["message"].startswith("The service is briefly unavailable")
    assert client.get("/ifttt/v1/status", HTTP_IFTTT_SERVICE_KEY=SERVICE_KEY)["Retry-After"] == "7"
    assert device.json()["code"] == "unavailable"
    said = [r for r in caplog.records if r.name in ("core.db", "django.request") and r.exc_info]
    assert len(said) == 1  # the outage is said once, not with a traceback a request


def test_the_first_request_after_the_database_returns_is_served(database_down: Any, client: Client) -> None:
    assert client.get("/ifttt/v1/status", HTTP_IFTTT_SERVICE_KEY=SERVICE_KEY).status_code == 503
    database_down()  # back
    assert client.get("/ifttt/v1/status", HTTP_IFTTT_SERVICE_KEY=SERVICE_KEY).status_code == 200
