"""Fixtures shared by every app's tests.

Tests that need PostgreSQL, Redis or Chromium use `require_postgres`, `require_redis` or
`require_chromium`: without the service they skip with the reason, unless REQUIRE_SERVICES=1
(as CI sets it), where a missing service is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from iftttsvc.services import endpoint_tests_prepare

SERVICE_KEY = "test-service-key"


def _services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "") not in ("", "0")


def need(condition: bool, reason: str) -> None:
    """Skip (or, with REQUIRE_SERVICES=1, fail) when a real service the test needs is absent."""
    if condition:
        return
    if _services_required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def require_postgres() -> None:
    # Running on SQLite is a choice of database, not a missing service: CI runs the suite on both,
    # and these tests in its PostgreSQL pass.
    if connection.vendor != "postgresql":
        pytest.skip("this test needs PostgreSQL: run it with DATABASE_URL=postgres://… (CI's PostgreSQL pass does)")


@pytest.fixture
def require_redis() -> str:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    need(port_open("127.0.0.1", 6379), "this test needs Redis on 127.0.0.1:6379")
    return url


@pytest.fixture
def require_chromium() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
    need(bool(path), "this test needs Chromium: apt-get install chromium")
    return path


@pytest.fixture(autouse=True)
def _service_settings(settings: Any, tmp_path: Any) -> None:
    settings.IFTTT_SERVICE_KEY = SERVICE_KEY
    settings.IFTTT_STAGING_SERVICE_KEY = "test-staging-key"
    settings.IFTTT_REALTIME_URL = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SITE_URL = "https://smarthome.example"


class IftttClient:
    """A test client that speaks to the Service API as IFTTT does."""

    def __init__(self, client: Client, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"HTTP_X_REQUEST_ID": "0123456789abcdef0123456789abcdef", "HTTP_ACCEPT": "application/json"}
        if self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        headers.update(extra)
        return headers

    def post(self, path: str, body: Any = None, **extra: str) -> Any:
        data = body if isinstance(body, str | bytes) else json.dumps(body if body is not None else {})
        return self.client.post(path, data=data, content_type="application/json", **self.headers(**extra))

    def get(self, path: str, **extra: str) -> Any:
        return self.client.get(path, **self.headers(**extra))

    def delete(self, path: str, **extra: str) -> Any:
        return self.client.delete(path, content_type="application/json", **self.headers(**extra))


@pytest.fixture
def setup_data(db: Any) -> dict[str, Any]:
    """What test/setup returns: the test user's token and the samples."""
    return endpoint_tests_prepare()


@pytest.fixture
def ifttt(client: Client, setup_data: dict[str, Any]) -> IftttClient:
    return IftttClient(client, setup_data["accessToken"])


@pytest.fixture
def service_headers() -> dict[str, str]:
    return {"HTTP_IFTTT_SERVICE_KEY": SERVICE_KEY}


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    from accounts.models import User

    def make(username: str = "alice", **extra: Any) -> Any:
        return User.objects.create_user(username, f"{username}@example.com", "correct-horse-battery", **extra)

    return make
