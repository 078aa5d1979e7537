"""Failed-login throttling (django-axes), first in AUTHENTICATION_BACKENDS before the password check."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses sign-in while too many recent failures lock out this username from this address.

    It never signs anyone in itself; the password check is the next backend. Throttling is keyed by
    the client's address, so a check with no HTTP request behind it (the test client's `login()`, a
    shell session) is left to the password check instead of failing as django-axes would.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
