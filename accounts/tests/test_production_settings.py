"""Production (DJANGO_DEBUG=0) refuses weak secrets at start-up, passes `check --deploy`, sends HSTS
behind HTTPS, and `seed_demo` does not create published passwords there unless asked."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.models import User

ROOT = Path(__file__).resolve().parents[2]


def _strong() -> str:
    return secrets.token_urlsafe(50)


def _production(**overrides: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy` in a fresh process with production settings and these variables."""
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": _strong(),
        "IFTTT_SERVICE_KEY": _strong(),
        "IFTTT_CLIENT_SECRET": _strong(),
        "DATABASE_URL": "sqlite:///:memory:",
        **overrides,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy() -> None:
    result = _production()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_SECRET_KEY", "xyzzy"),
        ("DJANGO_SECRET_KEY", "django-insecure-" + "a1b2c3d4e5" * 5),
        ("DJANGO_SECRET_KEY", "ab" * 40),
        ("IFTTT_SERVICE_KEY", "key"),
        ("IFTTT_CLIENT_SECRET", "changeme-changeme-changeme-changeme"),
        ("IFTTT_STAGING_SERVICE_KEY", "staging"),
        ("METRICS_TOKEN", "token"),
    ],
)
def test_a_weak_secret_is_refused_at_start_up_naming_it(variable: str, value: str) -> None:
    result = _production(**{variable: value})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("django.core.exceptions.ImproperlyConfigured")
    assert variable in message
    assert value not in message  # the message never echoes the secret


def test_hsts_is_sent_behind_https(settings: Any, db: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    assert "Strict-Transport-Security" not in Client().get("/accounts/login/")  # plain HTTP: never


def test_seed_demo_refuses_published_passwords_with_debug_off(settings: Any, db: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--allow-published-passwords"):
        call_command("seed_demo", "--days", "1", stdout=StringIO())
    assert not User.objects.filter(username="demo").exists()

    call_command("seed_demo", "--days", "1", "--allow-published-passwords", stdout=StringIO())
    assert User.objects.get(username="demo").check_password("demo-password")
