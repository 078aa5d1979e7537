"""Development never talks to the real IFTTT by accident; `serve`'s banner says where calls go."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.management.commands.serve import banner

ROOT = Path(__file__).resolve().parents[2]
REAL_REALTIME = "https://realtime.ifttt.com/v1/notifications"
REAL_CONNECT = "https://connect.ifttt.com"
# Production refuses short or placeholder-looking secrets at start-up: these are random, as real ones are.
PRODUCTION_SECRETS = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "IFTTT_SERVICE_KEY": secrets.token_urlsafe(32),
    "IFTTT_CLIENT_SECRET": secrets.token_urlsafe(40),
}


def destinations(tmp_path: Path, **env: str) -> dict[str, str]:
    """The settings a fresh process computes from this environment alone."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IFTTT_", "DJANGO_"))}
    clean.update({"DJANGO_SETTINGS_MODULE": "iftttsvc.settings", "VAR_DIR": str(tmp_path), **env})
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'realtime': settings.IFTTT_REALTIME_URL, 'connect': settings.IFTTT_CONNECT_URL}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(out.stdout)
    return result


def test_development_sends_no_realtime_and_calls_no_connect_api_by_default(tmp_path: Path) -> None:
    found = destinations(tmp_path, DJANGO_DEBUG="1")
    assert found["realtime"] == ""
    assert "ifttt.com" not in found["connect"]


def test_the_development_service_key_alone_also_keeps_calls_local(tmp_path: Path) -> None:
    # DEBUG off with the development key refuses to start; the key is what marks development.
    found = destinations(tmp_path, DJANGO_DEBUG="1", IFTTT_SERVICE_KEY="")
    assert found["realtime"] == "" and "ifttt.com" not in found["connect"]


def test_development_sends_where_it_is_told_explicitly(tmp_path: Path) -> None:
    found = destinations(
        tmp_path,
        DJANGO_DEBUG="1",
        IFTTT_REALTIME_URL="http://127.0.0.1:8465/v1/notifications",
        IFTTT_CONNECT_URL=REAL_CONNECT,
    )
    assert found == {"realtime": "http://127.0.0.1:8465/v1/notifications", "connect": REAL_CONNECT}


def test_production_keeps_ifttts_real_urls_by_default(tmp_path: Path) -> None:
    found = destinations(tmp_path, DJANGO_DEBUG="0", **PRODUCTION_SECRETS)
    assert found == {"realtime": REAL_REALTIME, "connect": REAL_CONNECT}


def _line(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(name))


@pytest.mark.parametrize(
    ("realtime", "shown"),
    [
        ("", "off"),
        ("http://127.0.0.1:8465/v1/notifications", "http://127.0.0.1:8465/v1/notifications"),
        (REAL_REALTIME, f"{REAL_REALTIME}   (IFTTT itself)"),
    ],
)
def test_the_banner_names_where_realtime_notifications_go(settings: Any, realtime: str, shown: str) -> None:
    settings.IFTTT_REALTIME_URL = realtime
    assert _line(banner("http://127.0.0.1:8000"), "Realtime").split(None, 1)[1].startswith(shown)


def test_the_banner_names_where_connect_calls_go(settings: Any) -> None:
    settings.IFTTT_CONNECT_URL = settings.IFTTT_NOWHERE_CONNECT_URL
    assert "nowhere" in _line(banner("http://127.0.0.1:8000"), "Connect API")
    settings.IFTTT_CONNECT_URL = REAL_CONNECT
    assert _line(banner("http://127.0.0.1:8000"), "Connect API").endswith(f"{REAL_CONNECT}   (IFTTT itself)")


def test_the_banner_names_the_embedded_brokers_file(settings: Any) -> None:
    settings.CELERY_EMBEDDED_BROKER = True
    settings.CELERY_BROKER_URL = f"sqlite://localhost/{settings.VAR_DIR.resolve() / 'broker.sqlite3'}"
    assert str(settings.VAR_DIR.resolve() / "broker.sqlite3") in _line(banner("http://127.0.0.1:8000"), "Broker")
