"""`manage.py serve` (what `make run` starts) keeps its parts running, and says so when it cannot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], bool], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.2)


def children(pid: int) -> dict[str, int]:
    """serve's direct children by role: "web", "worker", "beat"."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(") ", 1)[1].split()[1]) != pid or stat.rsplit(") ", 1)[1][0] == "Z":
            continue
        words = [a.decode() for a in argv]
        role = (
            "web"
            if any(w.endswith("gunicorn") for w in words)
            else next((w for w in words if w in ("worker", "beat")), "")
        )
        if role:
            found[role] = int(entry.name)
    return found


def test_serve_restarts_a_killed_worker_while_the_web_answers_and_gives_up_on_a_beat_that_keeps_dying(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL", "IFTTT_"))}
    env.update({"VAR_DIR": str(tmp_path), "DJANGO_DEBUG": "1", "WEB_CONCURRENCY": "1"})
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--max-restarts", "1"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    health = f"http://127.0.0.1:{port}/healthz"

    def answers() -> bool:
        try:
            return requests.get(health, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(lambda: answers() and "ready." in log.read_text() and len(children(serve.pid)) == 3)
        first = children(serve.pid)

        os.kill(first["worker"], signal.SIGKILL)
        wait_for(lambda: "the Celery worker stopped" in log.read_text())
        assert answers()  # the web never depended on the worker
        wait_for(lambda: children(serve.pid).get("worker") not in (None, first["worker"]))
        assert children(serve.pid)["web"] == first["web"]
        text = log.read_text()
        assert text.count("serve: the Celery worker stopped") == 1
        assert "(killed by signal SIGKILL)" in text

        # Beat dies twice: one restart is allowed, the second death ends serve with a reason.
        os.kill(first["beat"], signal.SIGKILL)
        wait_for(lambda: children(serve.pid).get("beat") not in (None, first["beat"]))
        os.kill(children(serve.pid)["beat"], signal.SIGKILL)
        assert serve.wait(timeout=60) == 1
        text = log.read_text()
        assert "the Celery beat scheduler died 2 times" in text and "killed by signal SIGKILL" in text
        assert not answers()  # everything stopped with it
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=60)
