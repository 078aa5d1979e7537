from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .connect_server import ConnectState, connect_api_server


@pytest.fixture
def connect_api(settings: Any) -> Iterator[ConnectState]:
    """The Connect API stand-in, with the client pointed at it and backoff short enough for tests."""
    with connect_api_server(settings.IFTTT_SERVICE_KEY) as (url, state):
        settings.IFTTT_CONNECT_URL = url
        settings.IFTTT_CONNECT_BACKOFF = 0.01
        settings.IFTTT_CONNECT_TIMEOUT = 2.0
        settings.IFTTT_CONNECT_RETRIES = 3
        yield state


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Users here exist to own connections; hashing their passwords properly only slows the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
