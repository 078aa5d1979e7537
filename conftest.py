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
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from protocol.services import endpoint_tests_prepare

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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `make test` spreads the suite over the machine's cores (pytest-xdist, --dist loadgroup). Tests that
    # start Celery workers share one Redis broker database, where workers of two tests would take each
    # other's tasks: keep them on one xdist worker, one after another.
    for item in items:
        if "require_redis" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("redis"))


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
    # Tests read the API log right after a call: write each row at once.
    settings.API_LOG_FLUSH_SECONDS = 0
    # Password hashing is deliberately slow; the suite signs in hundreds of users. Processes a test starts
    # keep the real hashers and list this one after them, so they still verify these hashes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]


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


# Debian's Chromium as root on a machine with no outside network: no sandbox, and none of the
# background connections (updates, sync) that would only be refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A port that is free right now, picked by the operating system (for a server that another piece
    of code will start: a fixed range would keep two checkouts from testing at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _OneRequestAtATime:
    """A WSGI app wrapper: one request at a time, from the call until the response is closed (which
    runs its closers, such as the API-log write). For in-memory SQLite, where every request thread of
    the live server shares the test's single connection and two at once would corrupt each other."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        self.lock.acquire()
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self.lock.release()
            raise
        return _ReleasedOnClose(result, self.lock)


class _ReleasedOnClose:
    def __init__(self, result: Any, lock: threading.Lock) -> None:
        self.result = result
        self.lock = lock

    def __iter__(self) -> Any:
        return iter(self.result)

    def close(self) -> None:
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            self.lock.release()


@pytest.fixture
def live_site(transactional_db: Any) -> Iterator[str]:
    """The whole site served over real HTTP on 127.0.0.1."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer(f"127.0.0.1:{free_port()}", start=False)
    server._live_server_modified_settings.enable()
    server.start()
    if connection.vendor == "sqlite":
        httpd = server.thread.httpd
        httpd.set_app(_OneRequestAtATime(httpd.get_app()))
    try:
        yield server.url
    finally:
        server.stop()
        server._live_server_modified_settings.disable()


@pytest.fixture
def chromium_extra_args() -> list[str]:
    """Override in a test module to start Chromium with more flags."""
    return []


@pytest.fixture
def chromium(require_chromium: str, chromium_extra_args: list[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright. Ask for the test's data before this fixture: once
    Playwright runs, this thread is inside its event loop, and Django would open a second database
    connection there."""
    # Playwright's sync API runs an event loop on this thread; an ORM call made while it runs is still
    # a plain synchronous call, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require_chromium, args=CHROMIUM_ARGS + chromium_extra_args)
        try:
            yield browser
        finally:
            browser.close()
            # Close, in this context, the connection the test's queries used while the loop ran, or
            # it outlives the test database.
            connections.close_all()


# --- Screenshots of the pages people and support use (docs/screenshots/, refreshed by `make screenshots`) ---

PAGE_WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def screenshot_path(name: str, tmp_path: Any) -> str:
    """Where a browser test keeps the screenshot `name`: docs/screenshots/ with UPDATE_SCREENSHOTS=1, else tmp."""
    from pathlib import Path

    from django.conf import settings

    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        folder = Path(settings.BASE_DIR) / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / f"{name}.png")
    return str(Path(tmp_path) / f"{name}.png")


def page_fits_the_screen(page: Any) -> bool:
    """No horizontal scrolling: the page is no wider than the window."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
