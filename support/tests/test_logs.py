"""The logs a person reads: each refused request once, no chatter at each sign-in."""

from __future__ import annotations

import logging
from typing import Any

from django.test import Client


def test_django_has_no_console_handler_of_its_own() -> None:
    # Django's default config gives "django" its own console handler; with the root's, every 4xx line
    # ("Not Found: …") was written twice.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate


def test_a_404_is_one_log_record(client: Client, caplog: Any) -> None:
    with caplog.at_level(logging.INFO):
        client.get("/no-such-page/")
    assert [r.getMessage() for r in caplog.records if "Not Found" in r.getMessage()] == ["Not Found: /no-such-page/"]


def test_a_sign_in_writes_no_info_lines(client: Client, make_user: Any, caplog: Any) -> None:
    make_user("erin")
    with caplog.at_level(logging.INFO):
        response = client.post("/accounts/login/", {"username": "erin", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert [r.getMessage() for r in caplog.records if r.name.startswith("axes") and r.levelno < logging.WARNING] == []
