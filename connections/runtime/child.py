"""The sandbox process: runs connection scripts in V8, one fresh context per run.

It runs apart from the worker because V8 aborts its whole process on some allocations (an array of
a billion elements is a fatal error, not an exception); here that costs one sandbox process, which
the worker replaces. It imports nothing from the project and has no network or file API to offer
scripts: the only way out is the JSON-lines protocol on stdin/stdout with its parent.

    parent → {"op": "run", "setup": {...}, "timeout_ms": 10000, "memory_mb": 64}
    child  → {"op": "calls", "calls": [{"seq", "kind", "id", "body"}]}      (zero or more times)
    parent → {"op": "results", "results": [{"seq", "statusCode", "responseBody"} | {"seq", "error"}]}
    child  → {"op": "done", "outcome", "error", "logs", "logs_dropped", "unsettled", "engine_ms"}
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from py_mini_racer import JSOOMException, JSTimeoutException, MiniRacer, init_mini_racer

WATCHDOG_GRACE_SECONDS = 0.5
PRELUDE = (Path(__file__).resolve().parent / "prelude.js").read_text(encoding="utf-8")


def _new_context(memory_mb: int) -> MiniRacer:
    ctx = MiniRacer()
    ctx.set_hard_memory_limit(memory_mb * 1024 * 1024)
    ctx.eval(PRELUDE)
    # V8 compiles functions on first call: make that call now, off the clock. (All harmless when idle.)
    ctx.eval("__connectionsRuntime.state(); __connectionsRuntime.settle('[]'); __connectionsRuntime.fireTimers(); 0")
    return ctx


class MemoryLimitReached(Exception):
    pass


def _eval(ctx: MiniRacer, code: str, timeout_s: float) -> Any:
    result = ctx.eval(code, timeout_sec=timeout_s)
    # A cap reached inside a microtask (after an `await`) stops the script without failing the eval.
    if ctx.was_hard_memory_limit_reached():
        raise MemoryLimitReached
    return result


_send_lock = threading.Lock()


def _send(out: Any, message: dict[str, Any]) -> None:
    with _send_lock:
        out.write(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
        out.flush()


class _Run:
    """One run's bookkeeping, shared with the watchdog thread."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.started = time.monotonic()
        self.deadline = self.started + request["timeout_ms"] / 1000
        self.host_seconds = 0.0  # time the parent spent on Connect calls: not the engine's
        self.logs: list[dict[str, str]] = []
        self.logs_dropped = 0
        self.finished = False

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise JSTimeoutException
        return left

    def timed_out_error(self) -> str:
        return f"The script ran longer than the {self.request['timeout_ms'] / 1000:g} s limit and was stopped."

    def done(self, outcome: str, error: str, unsettled: int = 0) -> dict[str, Any]:
        return {
            "op": "done",
            "outcome": outcome,
            "error": error,
            "logs": self.logs,
            "logs_dropped": self.logs_dropped,
            "unsettled": unsettled,
            "engine_ms": round((time.monotonic() - self.started - self.host_seconds) * 1000, 3),
        }


def _watchdog(run: _Run, stdout: Any) -> None:
    """V8 cannot stop a loop running in a microtask (code after an `await`): the eval never returns.

    So past the deadline this thread answers for the run, with what it had gathered, and ends the
    process; the parent starts a fresh sandbox for the next run.
    """
    with _send_lock:
        if run.finished:
            return
        run.finished = True
    error = run.timed_out_error() + " Console output from its last step was lost."
    _send(stdout, {**run.done("timed_out", error), "exiting": True})
    os._exit(0)


def _run(ctx: MiniRacer, request: dict[str, Any], stdin: Any, stdout: Any) -> dict[str, Any]:
    run = _Run(request)
    watchdog = threading.Timer(request["timeout_ms"] / 1000 + WATCHDOG_GRACE_SECONDS, _watchdog, (run, stdout))
    watchdog.daemon = True
    watchdog.start()
    outcome, error = "succeeded", ""
    driver = "__connectionsRuntime"

    def state() -> dict[str, Any]:
        current: dict[str, Any] = json.loads(str(_eval(ctx, f"{driver}.state()", run.remaining())))
        run.logs.extend(current["logs"])
        return current

    try:
        _eval(ctx, f"{driver}.start({json.dumps(json.dumps(request['setup']))})", run.remaining())
        while True:
            current = state()
            if current["calls"]:
                _send(stdout, {"op": "calls", "calls": current["calls"]})
                waited = time.monotonic()
                line = stdin.readline()
                run.host_seconds += time.monotonic() - waited
                if not line:
                    raise SystemExit(0)
                reply = json.loads(line)
                _eval(ctx, f"{driver}.settle({json.dumps(json.dumps(reply['results']))})", run.remaining())
            elif current["wait_ms"] is not None:
                pause = current["wait_ms"] / 1000
                if pause >= run.deadline - time.monotonic():
                    raise JSTimeoutException
                time.sleep(pause)
                _eval(ctx, f"{driver}.fireTimers()", run.remaining())
            else:
                break
    except JSTimeoutException:
        outcome, error = "timed_out", run.timed_out_error()
    except (JSOOMException, MemoryLimitReached):
        outcome = "memory_exceeded"
        error = f"The script used more than the {request['memory_mb']} MB memory limit and was stopped."
    except Exception as exc:  # an engine error is the script's failure, never the sandbox's
        outcome, error = "failed", str(exc)

    report: dict[str, Any] = {"logs": [], "logs_dropped": 0, "errors": [], "unsettled": 0}
    # A terminated context may refuse even this; the outcome already says why.
    with contextlib.suppress(Exception):
        report = json.loads(str(ctx.eval(f"{driver}.report()", timeout_sec=1)))
    run.logs.extend(report["logs"])
    run.logs_dropped = report["logs_dropped"]
    if outcome == "succeeded" and report["errors"]:
        outcome, error = "failed", "\n".join(report["errors"])
    watchdog.cancel()
    with _send_lock:
        answered = run.finished
        run.finished = True
    if answered:  # the watchdog answered for this run and is ending the process
        threading.Event().wait()
    return run.done(outcome, error, report["unsettled"])


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    # V8's own heap ceiling sits above the per-context cap, so the cap (a catchable stop) trips first;
    # the ceiling only ends this process for allocations the cap cannot see coming.
    init_mini_racer(flags=("--single-threaded", f"--max-old-space-size={memory_mb * 3}"), ignore_duplicate_init=True)
    # A context is made ahead of each run, while the sandbox would otherwise sit idle.
    ctx = _new_context(memory_mb)
    _send(stdout, {"op": "ready"})
    while True:
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        if request.get("op") != "run":
            continue
        if request["memory_mb"] != memory_mb:
            ctx.close()
            memory_mb = request["memory_mb"]
            ctx = _new_context(memory_mb)
        result = _run(ctx, request, stdin, stdout)
        _send(stdout, result)
        ctx.close()
        ctx = _new_context(memory_mb)


if __name__ == "__main__":
    main()
