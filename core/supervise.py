"""Keep a few child processes running: what `manage.py serve` uses for gunicorn, the worker and beat.

A child that dies is logged once, with why (its exit code or the signal that killed it), and started
again after a backoff that doubles while it keeps dying soon after starting. A child that dies too
often in a window is not started again: the supervisor stops the others and reports which one and why,
so `make run` ends with a non-zero status and a readable reason instead of half a service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChildSpec:
    name: str  # how the logs name it: "the web server (gunicorn)", "the Celery worker", ...
    argv: Sequence[str]
    env: Mapping[str, str] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # set while it waits for its backoff
    failures_in_a_row: int = 0
    deaths: deque[float] = field(default_factory=deque)


def exit_reason(returncode: int) -> str:
    """A process's end in words: "exit code 1", "killed by signal SIGKILL"."""
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class GaveUp(Exception):
    """A child died too often; the message names it and the reason it last died."""


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        log: Callable[[str], None],
        max_restarts: int = 5,
        window_seconds: float = 600.0,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        stable_after_seconds: float = 60.0,
        stop_timeout_seconds: float = 15.0,
        poll_seconds: float = 0.2,
    ) -> None:
        self.children = [_Child(spec) for spec in specs]
        self.log = log
        self.max_restarts = max_restarts
        self.window_seconds = window_seconds
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.stable_after_seconds = stable_after_seconds
        self.stop_timeout_seconds = stop_timeout_seconds
        self.poll_seconds = poll_seconds
        self.restarts = 0
        self._stop = threading.Event()

    def pids(self) -> dict[str, int | None]:
        return {c.spec.name: c.process.pid if c.process and c.process.poll() is None else None for c in self.children}

    def stop(self) -> None:
        """Ask run() to stop the children and return (safe from a signal handler or another thread)."""
        self._stop.set()

    def run(self) -> None:
        """Start every child and keep them running until stop(); raises GaveUp when one dies too often."""
        try:
            for child in self.children:
                self._start(child)
            while not self._stop.wait(self.poll_seconds):
                now = time.monotonic()
                for child in self.children:
                    if child.restart_at is not None:
                        if now >= child.restart_at:
                            self._start(child)
                        continue
                    assert child.process is not None
                    returncode = child.process.poll()
                    if returncode is not None and not self._stop.is_set():
                        self._died(child, returncode, now)
        finally:
            self._terminate_all()

    def _start(self, child: _Child) -> None:
        env = {**os.environ, **child.spec.env} if child.spec.env is not None else None
        child.process = subprocess.Popen(list(child.spec.argv), env=env)  # noqa: S603 (argv from our own code)
        child.started_at = time.monotonic()
        child.restart_at = None

    def _died(self, child: _Child, returncode: int, now: float) -> None:
        reason = exit_reason(returncode)
        child.deaths.append(now)
        while child.deaths and child.deaths[0] < now - self.window_seconds:
            child.deaths.popleft()
        if len(child.deaths) > self.max_restarts:
            raise GaveUp(
                f"{child.spec.name} died {len(child.deaths)} times within {self.window_seconds:g} s "
                f"(the last time: {reason}); stopping everything. Its log lines above say why."
            )
        # Quick deaths in a row back off further; a child that had been running a while starts again soon.
        ran = now - child.started_at
        child.failures_in_a_row = 1 if ran >= self.stable_after_seconds else child.failures_in_a_row + 1
        delay = min(self.backoff_seconds * 2 ** (child.failures_in_a_row - 1), self.backoff_max_seconds)
        child.restart_at = now + delay
        self.restarts += 1
        self.log(
            f"{child.spec.name} stopped after {ran:.0f} s ({reason}); starting it again in {delay:g} s "
            f"({len(child.deaths)} of at most {self.max_restarts} restarts within {self.window_seconds:g} s)."
        )

    def _terminate_all(self) -> None:
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_seconds
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
