"""Run a connection script in the sandbox process and answer its Connect API calls.

`script_execute` is the one entry point. Each worker process keeps one sandbox process (started on
first use, replaced whenever it dies); the sandbox keeps one fresh V8 context ready, so a run costs
a context switch and the script itself, not an engine start.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

CHILD = Path(__file__).resolve().parent / "runtime" / "child.py"
# How long past the script's own limit we wait for the sandbox before declaring it hung.
GRACE_SECONDS = 3.0
START_TIMEOUT_SECONDS = 30.0


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    MEMORY_EXCEEDED = "memory_exceeded"
    CRASHED = "crashed"


@dataclass
class CallReply:
    """What a runAction/performQuery Promise settles with: a response, or an error (a rejection)."""

    status_code: int | None = None
    body: Any = None
    error: str | None = None


@dataclass
class CallRecord:
    seq: int
    kind: str  # "action" or "query"
    id: str
    body: dict[str, Any]
    status_code: int | None = None
    response_body: Any = None
    error: str | None = None
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "id": self.id,
            "body": self.body,
            "status_code": self.status_code,
            "response_body": self.response_body,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass
class ScriptSetup:
    """The globals a script sees (Meta, Trigger, Connection), as the sandbox needs them."""

    script: str
    trigger_id: str
    ingredients: dict[str, Any]
    service_user_id: str
    feature_name: str
    user_feature_id: str
    configuration: dict[str, Any]
    now_ms: int
    offset_minutes: int
    zone: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "trigger": {"id": self.trigger_id, "ingredients": self.ingredients},
            "connection": {
                "serviceUserId": self.service_user_id,
                "currentFeatureName": self.feature_name,
                "userFeatureId": self.user_feature_id,
                "configuration": self.configuration,
            },
            "now_ms": self.now_ms,
            "offset_minutes": self.offset_minutes,
            "zone": self.zone,
        }


@dataclass
class ScriptResult:
    outcome: str
    error: str = ""
    logs: list[dict[str, str]] = field(default_factory=list)
    logs_dropped: int = 0
    calls: list[CallRecord] = field(default_factory=list)
    duration_ms: float = 0.0
    # Script start to finish minus the time spent on Connect API calls: the sandbox's own cost.
    overhead_ms: float = 0.0


CallHandler = Callable[[str, str, dict[str, Any]], CallReply]


class SandboxCrashed(Exception):
    pass


class Sandbox:
    """One sandbox process, used by one run at a time."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and file, no shell)
            [sys.executable, "-I", str(CHILD), str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            close_fds=True,
            env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
        )
        self.pid = os.getpid()
        self.calls: list[CallRecord] = []
        # Set when the sandbox said it is ending itself (after a run it could not stop cleanly).
        self.exiting = False
        message = self._read(time.monotonic() + START_TIMEOUT_SECONDS)
        if message is None or message.get("op") != "ready":
            self.close()
            raise SandboxCrashed(f"The script sandbox did not start: {self.stderr_tail()}")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr_tail(self, size: int = 2000) -> str:
        try:
            self.stderr.seek(0, os.SEEK_END)
            end = self.stderr.tell()
            self.stderr.seek(max(0, end - size))
            return self.stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.stderr.close()

    def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise SandboxCrashed("The script sandbox stopped unexpectedly.") from exc

    def _read(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None when the deadline passes first."""
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([stdout], [], [], left)
            if ready:
                line = stdout.readline()
                if not line:
                    raise SandboxCrashed("The script sandbox stopped unexpectedly.")
                message: dict[str, Any] = json.loads(line)
                return message

    def run(self, setup: ScriptSetup, handler: CallHandler, *, timeout_s: float) -> ScriptResult:
        started = time.monotonic()
        deadline = started + timeout_s + GRACE_SECONDS
        calls: list[CallRecord] = []
        self.calls = calls  # kept on the sandbox so a crash still reports the calls made
        host_seconds = 0.0
        self._write(
            {"op": "run", "setup": setup.as_dict(), "timeout_ms": int(timeout_s * 1000), "memory_mb": self.memory_mb}
        )
        while True:
            message = self._read(deadline)
            if message is None:
                # The sandbox enforces the limit itself; reaching here means it is stuck. Replace it.
                self.close()
                return ScriptResult(
                    outcome=Outcome.TIMED_OUT,
                    error=f"The script ran longer than the {timeout_s:g} s limit and was stopped.",
                    calls=calls,
                    duration_ms=(time.monotonic() - started) * 1000,
                )
            if message["op"] == "calls":
                results = []
                for raw in message["calls"]:
                    record = CallRecord(seq=raw["seq"], kind=raw["kind"], id=raw["id"], body=raw["body"])
                    call_started = time.monotonic()
                    try:
                        reply = handler(record.kind, record.id, record.body)
                    except Exception:  # a handler bug must not leave the script's Promise hanging
                        logger.exception("Connect call handler failed for %s %s", record.kind, record.id)
                        reply = CallReply(error="The call could not be made because of an error on our side.")
                    record.duration_ms = (time.monotonic() - call_started) * 1000
                    host_seconds += time.monotonic() - call_started
                    record.status_code, record.response_body, record.error = reply.status_code, reply.body, reply.error
                    calls.append(record)
                    if reply.error is not None:
                        results.append({"seq": record.seq, "error": reply.error})
                    else:
                        results.append({"seq": record.seq, "statusCode": reply.status_code, "responseBody": reply.body})
                self._write({"op": "results", "results": results})
            elif message["op"] == "done":
                self.exiting = bool(message.get("exiting"))
                duration_ms = (time.monotonic() - started) * 1000
                return ScriptResult(
                    outcome=message["outcome"],
                    error=message["error"],
                    logs=message["logs"],
                    logs_dropped=message["logs_dropped"],
                    calls=calls,
                    duration_ms=duration_ms,
                    overhead_ms=duration_ms - host_seconds * 1000,
                )


# One sandbox per thread: a run holds its sandbox from start to finish.
_local = threading.local()


def _sandbox(memory_mb: int) -> Sandbox:
    sandbox: Sandbox | None = getattr(_local, "sandbox", None)
    # A forked worker inherits its parent's handle; the process behind it belongs to the parent.
    if sandbox is not None and (sandbox.pid != os.getpid() or not sandbox.alive or sandbox.memory_mb != memory_mb):
        if sandbox.pid == os.getpid():
            sandbox.close()
        sandbox = None
    if sandbox is None:
        sandbox = Sandbox(memory_mb)
        _local.sandbox = sandbox
    return sandbox


def _crash_outcome(sandbox: Sandbox) -> tuple[str, str]:
    tail = sandbox.stderr_tail()
    memory_signs = ("out of memory", "invalid size", "heap limit", "allocation failed", "invalid table size")
    if any(sign in tail.lower() for sign in memory_signs):
        return (
            Outcome.MEMORY_EXCEEDED,
            f"The script tried to use more than the {sandbox.memory_mb} MB memory limit and was stopped.",
        )
    last = tail.splitlines()[-1] if tail else "no details"
    return Outcome.CRASHED, f"The script sandbox stopped unexpectedly ({last}). The script was not finished."


def script_execute(
    *, setup: ScriptSetup, handler: CallHandler, timeout_s: float = 10.0, memory_mb: int = 64
) -> ScriptResult:
    """Run `setup.script` to completion (its Promises and timers included) or to its limits.

    Never raises for anything the script does: the outcome says what happened.
    """
    sandbox = _sandbox(memory_mb)
    started = time.monotonic()
    try:
        result = sandbox.run(setup, handler, timeout_s=timeout_s)
        if sandbox.exiting or not sandbox.alive:
            sandbox.close()
            _local.sandbox = None
        return result
    except SandboxCrashed:
        sandbox.process.wait()
        outcome, error = _crash_outcome(sandbox)
        logger.warning("Script sandbox %s exited (%s): %s", sandbox.process.pid, outcome, error)
        sandbox.close()
        _local.sandbox = None
        return ScriptResult(
            outcome=outcome, error=error, calls=sandbox.calls, duration_ms=(time.monotonic() - started) * 1000
        )
    except BaseException:
        # Interrupted mid-run (a task time limit, a signal): its messages would confuse the next run.
        sandbox.close()
        _local.sandbox = None
        raise


def sandbox_shutdown() -> None:
    """Stop this thread's sandbox process (tests and benchmarks call it; workers just exit)."""
    sandbox: Sandbox | None = getattr(_local, "sandbox", None)
    if sandbox is not None and sandbox.pid == os.getpid():
        sandbox.close()
    _local.sandbox = None
