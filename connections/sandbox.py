"""Run a connection script in the sandbox process and answer its Connect API calls.

`script_execute` is the one entry point. Each worker process keeps one sandbox process (started on
first use, replaced whenever it dies); the sandbox keeps one fresh V8 context ready, so a run costs
a context switch and the script itself, not an engine start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import signal
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
# moment.js, moment-timezone and acorn, installed by `make install` (`npm ci` from package-lock.json).
NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
# How long past the script's own limit we wait for the sandbox before declaring it hung.
GRACE_SECONDS = 3.0
START_TIMEOUT_SECONDS = 30.0

# What one run may do. The runtime in the script's context applies them too, for clear messages,
# but only these checks, made here on messages this process parses itself, decide what happens.
MAX_CALLS = 50
MAX_LOG_LINES = 500
MAX_LOG_CHARS = 64 * 1024
MAX_BODY_CHARS = 64 * 1024
MAX_ERROR_CHARS = 8 * 1024
# The largest message the sandbox may send: a full batch of calls or a full run's console output.
MAX_MESSAGE_BYTES = 2 * (MAX_CALLS * (MAX_BODY_CHARS + 1024) + MAX_LOG_CHARS + MAX_LOG_LINES * 64)
# IFTTT's ids for a connection's actions and queries: "<service>.<slug>", e.g. "sms.send_me_text".
# They become URL segments of Connect API calls, so nothing else may pass.
CALL_ID_PATTERN = r"[a-z0-9_]{1,100}\.[a-z0-9_]{1,100}"
CALL_ID = re.compile(rf"\A{CALL_ID_PATTERN}\Z")
# The name the author's script carries in stack traces and error positions.
SCRIPT_NAME = "script.js"
LIMITS = {
    "calls": MAX_CALLS,
    "log_lines": MAX_LOG_LINES,
    "log_chars": MAX_LOG_CHARS,
    "body_chars": MAX_BODY_CHARS,
    "errors": 20,
    "call_id_pattern": CALL_ID_PATTERN,
    "script_name": SCRIPT_NAME,
}


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    MEMORY_EXCEEDED = "memory_exceeded"
    CRASHED = "crashed"


OUTCOMES = {Outcome.SUCCEEDED, Outcome.FAILED, Outcome.TIMED_OUT, Outcome.MEMORY_EXCEEDED, Outcome.CRASHED}


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
    zone: str  # IANA; Meta.currentUserTime is a moment in it

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
            "zone": self.zone,
        }


@dataclass
class ScriptResult:
    """How a run ended. `error` is the readable text (message and the script's own frames);
    `error_line`/`error_column` point into the author's script (1-based) when the error has a place."""

    outcome: str
    error: str = ""
    error_line: int | None = None
    error_column: int | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    logs_dropped: int = 0
    calls: list[CallRecord] = field(default_factory=list)
    duration_ms: float = 0.0
    # Script start to finish minus the time spent on Connect API calls: the sandbox's own cost.
    overhead_ms: float = 0.0


# Answers one runAction/performQuery. It returns a CallReply for every outcome it expects (an HTTP
# error status, an unreachable API); whatever it raises ends the run and reaches script_execute's caller.
CallHandler = Callable[[str, str, dict[str, Any]], CallReply]


class SandboxCrashed(Exception):
    pass


class SandboxMisbehaved(Exception):
    """The sandbox sent something outside the protocol or past a limit: it is not trusted further."""


def call_id_valid(value: Any) -> bool:
    return isinstance(value, str) and CALL_ID.match(value) is not None


# What the sandbox sends is parsed and checked here, never taken on trust.


def calls_checked(raw_calls: Any, seen: set[int]) -> list[CallRecord]:
    """The calls of one `calls` message, checked: the count, the seq, the kind, the id, the body."""
    if not isinstance(raw_calls, list) or not raw_calls:
        raise SandboxMisbehaved("a malformed list of calls")
    if len(seen) + len(raw_calls) > MAX_CALLS:
        raise SandboxMisbehaved(f"more than {MAX_CALLS} Connect API calls")
    records = []
    for raw in raw_calls:
        if not isinstance(raw, dict):
            raise SandboxMisbehaved("a malformed call")
        seq, kind, call_id, body = raw.get("seq"), raw.get("kind"), raw.get("id"), raw.get("body")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq in seen or not 1 <= seq <= MAX_CALLS:
            raise SandboxMisbehaved("a call out of sequence")
        if kind not in ("action", "query"):
            raise SandboxMisbehaved("a call that is neither an action nor a query")
        if not call_id_valid(call_id):
            raise SandboxMisbehaved("a call with an id that is not an IFTTT id")
        if not isinstance(body, dict) or len(json.dumps(body)) > MAX_BODY_CHARS:
            raise SandboxMisbehaved("a call whose body is not an object of the allowed size")
        seen.add(seq)
        records.append(CallRecord(seq=seq, kind=str(kind), id=str(call_id), body=body))
    return records


def logs_capped(raw_logs: Any, dropped: Any) -> tuple[list[dict[str, str]], int]:
    """The run's console output within the limits, whatever the sandbox sent."""
    logs: list[dict[str, str]] = []
    chars = 0
    extra = dropped if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped >= 0 else 0
    for entry in raw_logs if isinstance(raw_logs, list) else []:
        message = entry.get("message") if isinstance(entry, dict) else None
        if not isinstance(message, str) or len(logs) >= MAX_LOG_LINES or chars + len(message) > MAX_LOG_CHARS:
            extra += 1
            continue
        chars += len(message)
        level = entry.get("level")
        logs.append(
            {"level": level if level in ("log", "info", "debug", "warn", "error") else "log", "message": message}
        )
    return logs, extra


class Sandbox:
    """One sandbox process, used by one run at a time."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        config = {"memory_mb": memory_mb, "limits": LIMITS, "node_modules": str(NODE_MODULES)}
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and file, no shell)
            [sys.executable, "-I", str(CHILD), json.dumps(config)],
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
        try:
            message = self._read(time.monotonic() + START_TIMEOUT_SECONDS)
        except (SandboxCrashed, SandboxMisbehaved):
            message = None
        if message is None or message.get("op") != "ready":
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            tail = self.stderr_tail()
            self.close()
            raise SandboxCrashed(f"The script sandbox did not start: {tail}")

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
                # Closing flushes what was left unsent, to a process that is gone.
                with contextlib.suppress(OSError):
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
                line = stdout.readline(MAX_MESSAGE_BYTES + 1)
                if not line:
                    raise SandboxCrashed("The script sandbox stopped unexpectedly.")
                if not line.endswith(b"\n"):
                    raise SandboxMisbehaved(f"a message larger than {MAX_MESSAGE_BYTES} bytes")
                try:
                    message = json.loads(line)
                except ValueError:
                    raise SandboxMisbehaved("a message that is not JSON") from None
                if not isinstance(message, dict):
                    raise SandboxMisbehaved("a message that is not an object")
                return message

    def run(self, setup: ScriptSetup, handler: CallHandler, *, timeout_s: float) -> ScriptResult:
        started = time.monotonic()
        deadline = started + timeout_s + GRACE_SECONDS
        calls: list[CallRecord] = []
        self.calls = calls  # kept on the sandbox so a crash still reports the calls made
        seen: set[int] = set()
        host_seconds = 0.0
        self._write({"op": "run", "setup": setup.as_dict(), "timeout_ms": int(timeout_s * 1000)})
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
            op = message.get("op")
            if op == "calls":
                results = []
                for record in calls_checked(message.get("calls"), seen):
                    call_started = time.monotonic()
                    reply = handler(record.kind, record.id, record.body)
                    record.duration_ms = (time.monotonic() - call_started) * 1000
                    host_seconds += time.monotonic() - call_started
                    record.status_code, record.response_body, record.error = reply.status_code, reply.body, reply.error
                    calls.append(record)
                    if reply.error is not None:
                        results.append({"seq": record.seq, "error": reply.error})
                    else:
                        results.append(
                            {
                                "seq": record.seq,
                                "statusCode": reply.status_code,
                                "responseBody": reply.body,
                                "error": None,
                            }
                        )
                self._write({"op": "results", "results": results})
            elif op == "done":
                self.exiting = bool(message.get("exiting"))
                duration_ms = (time.monotonic() - started) * 1000
                outcome = message.get("outcome")
                if outcome not in OUTCOMES:
                    raise SandboxMisbehaved("an unknown outcome")
                logs, dropped = logs_capped(message.get("logs"), message.get("logs_dropped"))
                error = message.get("error")
                text, line, column = "", None, None
                if isinstance(error, dict):
                    text = str(error.get("message", ""))[:MAX_ERROR_CHARS]
                    line = _position(error.get("line"))
                    column = _position(error.get("column"))
                elif outcome != Outcome.SUCCEEDED:
                    text = "The script failed without an error message."
                return ScriptResult(
                    outcome=outcome,
                    error=text,
                    error_line=line,
                    error_column=column,
                    logs=logs,
                    logs_dropped=dropped,
                    calls=calls,
                    duration_ms=duration_ms,
                    overhead_ms=duration_ms - host_seconds * 1000,
                )
            else:
                raise SandboxMisbehaved("a message outside the protocol")


def _position(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


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
    code = sandbox.process.returncode
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = tail.splitlines()[-1] if tail else f"exit status {code}"
    return Outcome.CRASHED, f"The script sandbox stopped unexpectedly ({how}). The script was not finished."


def _forget(sandbox: Sandbox) -> None:
    sandbox.close()
    _local.sandbox = None


def script_execute(
    *, setup: ScriptSetup, handler: CallHandler, timeout_s: float = 10.0, memory_mb: int = 64
) -> ScriptResult:
    """Run `setup.script` to completion (its Promises and timers included) or to its limits.

    Returns a ScriptResult for everything the script does or suffers: `succeeded`, `failed` (with
    the error's place in the script), `timed_out` (the sandbox ended it at `timeout_s`, with what it
    was doing), `memory_exceeded`, `crashed` (the sandbox process died: how).
    What the worker itself raises while a run is in progress (a task time limit) or what `handler`
    raises is not caught: the sandbox is stopped and the exception reaches the caller unchanged.
    """
    sandbox = _sandbox(memory_mb)
    started = time.monotonic()
    try:
        result = sandbox.run(setup, handler, timeout_s=timeout_s)
    except SandboxCrashed:
        sandbox.process.wait()
        outcome, error = _crash_outcome(sandbox)
        logger.warning("Script sandbox %s exited (%s): %s", sandbox.process.pid, outcome, error)
        _forget(sandbox)
        return ScriptResult(
            outcome=outcome, error=error, calls=sandbox.calls, duration_ms=(time.monotonic() - started) * 1000
        )
    except SandboxMisbehaved as exc:
        logger.warning("Script sandbox %s sent %s; replaced", sandbox.process.pid, exc)
        _forget(sandbox)
        return ScriptResult(
            outcome=Outcome.FAILED,
            error=f"The run was stopped: its sandbox sent {exc}, which only a script tampering with the runtime does.",
            calls=sandbox.calls,
            duration_ms=(time.monotonic() - started) * 1000,
        )
    except BaseException:
        # Interrupted mid-run (a task time limit, a signal, a failing handler): stop the sandbox, whose
        # messages would confuse the next run, and let the interruption go on to the caller.
        _forget(sandbox)
        raise
    if sandbox.exiting or not sandbox.alive:
        _forget(sandbox)
    return result


def sandbox_shutdown() -> None:
    """Stop this thread's sandbox process (tests and benchmarks call it; workers just exit)."""
    sandbox: Sandbox | None = getattr(_local, "sandbox", None)
    if sandbox is not None and sandbox.pid == os.getpid():
        sandbox.close()
    _local.sandbox = None
