"""`serve`'s supervisor, with real child processes that are killed or keep failing."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import pytest

from core.supervise import ChildSpec, GaveUp, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
FAILING = [sys.executable, "-c", "import sys; sys.exit(3)"]


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.05)


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped) still answers kill 0: read its state.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_a_killed_worker_is_started_again_logged_once_with_its_signal_and_the_web_keeps_running() -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        [ChildSpec("the web server", SLEEPER), ChildSpec("the Celery worker", SLEEPER)],
        log=lines.append,
        backoff_seconds=0.1,
    )
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    try:
        wait_for(lambda: all(supervisor.pids().values()))
        first = supervisor.pids()
        os.kill(first["the Celery worker"], signal.SIGKILL)
        wait_for(lambda: supervisor.pids()["the Celery worker"] not in (None, first["the Celery worker"]))
        assert supervisor.pids()["the web server"] == first["the web server"]
        assert len(lines) == 1, lines
        assert "the Celery worker" in lines[0] and "killed by signal SIGKILL" in lines[0]
        assert "starting it again" in lines[0]

        # A second death is logged once too, and says how many restarts are left in the window.
        os.kill(supervisor.pids()["the Celery worker"], signal.SIGTERM)
        wait_for(lambda: len(lines) == 2 and supervisor.pids()["the Celery worker"] is not None)
        assert "killed by signal SIGTERM" in lines[1] and "2 of at most 5 restarts" in lines[1]
    finally:
        supervisor.stop()
        thread.join(timeout=30)
    last = supervisor.pids()
    assert not thread.is_alive()
    assert last == {"the web server": None, "the Celery worker": None}
    assert not running(first["the web server"])


def test_a_part_that_keeps_dying_stops_everything_with_a_message_naming_it_and_why() -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        [ChildSpec("the web server", SLEEPER), ChildSpec("the Celery beat scheduler", FAILING)],
        log=lines.append,
        max_restarts=2,
        backoff_seconds=0.05,
    )
    with pytest.raises(GaveUp) as gave_up:
        supervisor.run()
    message = str(gave_up.value)
    assert "the Celery beat scheduler died 3 times" in message
    assert "exit code 3" in message
    assert len(lines) == 2 and all("exit code 3" in line for line in lines)
    # The others are stopped too: nothing is left running half a service.
    web = supervisor.children[0].process
    assert web is not None and web.poll() is not None


def test_a_part_that_ran_a_while_before_dying_is_started_again_without_a_long_backoff() -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        [ChildSpec("the Celery worker", SLEEPER)],
        log=lines.append,
        backoff_seconds=0.1,
        backoff_max_seconds=60,
        stable_after_seconds=0.0,  # every run counts as a long one
    )
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    try:
        for n in range(3):
            wait_for(lambda: supervisor.pids()["the Celery worker"] is not None)
            os.kill(supervisor.pids()["the Celery worker"] or 0, signal.SIGKILL)
            wait_for(lambda n=n: len(lines) == n + 1)  # type: ignore[misc]
        assert all("again in 0.1 s" in line for line in lines), lines
    finally:
        supervisor.stop()
        thread.join(timeout=30)
