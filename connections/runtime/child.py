"""The sandbox process: runs connection scripts in V8, one fresh context per run.

It runs apart from the worker because V8 aborts its whole process on some allocations (an array of
a billion elements is a fatal error, not an exception); here that costs one sandbox process, which
the worker replaces. It imports nothing from the project and has no network or file API to offer
scripts: the only way out is the JSON-lines protocol on stdin/stdout with its parent, and the
parent checks and caps everything it receives.

    argv[1] = {"memory_mb", "limits": {...}, "node_modules": "<folder>"}
    parent → {"op": "run", "setup": {...}, "timeout_ms": 10000}
    child  → {"op": "calls", "calls": [{"seq", "kind", "id", "body"}]}      (zero or more times)
    parent → {"op": "results", "results": [{"seq", "statusCode", "responseBody", "error": null} | {"seq", "error"}]}
    child  → {"op": "done", "outcome", "error": {"message", "line", "column"} | null, "logs", "logs_dropped",
              "unsettled", "engine_ms"}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer, init_mini_racer

WATCHDOG_GRACE_SECONDS = 0.5
PRELUDE = (Path(__file__).resolve().parent / "prelude.js").read_text(encoding="utf-8")
# The script is compiled as the body of a function whose first line is the runtime's own.
SCRIPT_LINE_OFFSET = 1
CHECK = """
var __check = (function (acorn) {
  "use strict";
  var base = {sourceType: "script", allowReturnOutsideFunction: true, locations: false};
  function attempt(source, options) {
    try { acorn.parse(source, Object.assign({}, base, options)); return null; } catch (e) { return e; }
  }
  return function (source) {
    var error = attempt(source, {ecmaVersion: 2019});
    if (error === null) return "null";
    if (!error.loc) throw error;
    var newer = attempt(source, {ecmaVersion: "latest"}) === null;
    var awaits = !newer && attempt(source, {ecmaVersion: "latest", allowAwaitOutsideFunction: true}) === null;
    return JSON.stringify({
      message: String(error.message).replace(/ \\(\\d+:\\d+\\)$/, ""),
      line: error.loc.line,
      column: error.loc.column + 1,
      newer: newer,
      top_level_await: awaits,
    });
  };
})(acorn);
delete globalThis.acorn;
"""
FRAME = re.compile(r"^\s*at (?:(?P<name>.+?) \()?(?P<file>[^()\s]+):(?P<line>\d+):(?P<column>\d+)\)?$")


ZONES = """
(function (packed, start, end) {
  "use strict";
  var unpacked = {version: packed.version, zones: packed.zones.map(moment.tz.unpack), links: packed.links};
  var out = moment.tz.filterLinkPack(unpacked, start, end);
  // filterLinkPack can leave a link pointing at a name that is itself a link: point each at a zone.
  var zones = {}, targets = {};
  out.zones.forEach(function (zone) { zones[zone.split("|")[0]] = true; });
  out.links.forEach(function (link) { var p = link.split("|"); targets[p[1]] = p[0]; });
  var links = Object.keys(targets).map(function (alias) {
    var target = targets[alias], hops = 0;
    while (!zones[target] && targets[target] && hops++ < 20) target = targets[target];
    return target + "|" + alias;
  });
  return JSON.stringify({version: out.version, zones: out.zones, links: links});
})
"""
# The years of time zone data each context holds around the present: a script's Meta.currentUserTime
# and the dates near it; the full history would cost every run several milliseconds to unpack.
ZONE_YEARS = 10


class Runtime:
    """The JavaScript the sandbox loads from node_modules (installed by `make install`, `npm ci`)."""

    def __init__(self, node_modules: Path, limits: dict[str, Any]) -> None:
        files = {
            "moment": node_modules / "moment" / "min" / "moment.min.js",
            "moment_tz": node_modules / "moment-timezone" / "builds" / "moment-timezone.min.js",
            "moment_tz_utils": node_modules / "moment-timezone" / "moment-timezone-utils.js",
            "zones": node_modules / "moment-timezone" / "data" / "packed" / "latest.json",
            "acorn": node_modules / "acorn" / "dist" / "acorn.js",
        }
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise SystemExit(
                "The script runtime's JavaScript packages are not installed (missing "
                + ", ".join(missing)
                + "). Run `make install` (it runs `npm ci`)."
            )
        source = {name: path.read_text(encoding="utf-8") for name, path in files.items()}
        self.moment = source["moment"]
        self.moment_tz = source["moment_tz"]
        self.acorn = source["acorn"]
        self.limits = limits
        self.prelude = PRELUDE.replace("__LIMITS__", json.dumps(limits))
        # moment-timezone's own tools cut its data to the years around now, once per sandbox process.
        tools = MiniRacer()
        try:
            for name in ("moment", "moment_tz", "moment_tz_utils"):
                tools.eval(source[name])
            year = time.gmtime().tm_year
            self.zones = str(
                tools.eval(f"{ZONES}({source['zones']}, {year - ZONE_YEARS}, {year + ZONE_YEARS})", timeout_sec=30)
            )
        finally:
            tools.close()


def _new_context(runtime: Runtime, memory_mb: int) -> MiniRacer:
    ctx = MiniRacer()
    ctx.set_hard_memory_limit(memory_mb * 1024 * 1024)
    ctx.eval(runtime.moment)
    ctx.eval(runtime.moment_tz)
    ctx.eval(f"moment.tz.load(JSON.parse({json.dumps(runtime.zones)}))")
    ctx.eval(runtime.prelude)
    # V8 compiles functions on first call: make those calls now, off the clock. (All harmless when idle.)
    ctx.eval(
        "__connectionsRuntime.state(); __connectionsRuntime.settle('[]'); __connectionsRuntime.fireTimers(); "
        "__connectionsRuntime.warm(); 0"
    )
    return ctx


def _new_checker(runtime: Runtime) -> MiniRacer:
    """A context that only parses: it never runs a script, so one serves every run."""
    ctx = MiniRacer()
    ctx.eval(runtime.acorn)
    ctx.eval(CHECK)
    ctx.eval("__check('0')")
    return ctx


class MemoryLimitReached(Exception):
    pass


class RuntimeBroken(Exception):
    """What the context reported does not follow the runtime's own format: the script tampered with it."""


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


def script_error(text: str, script_name: str) -> dict[str, Any]:
    """An error as the author should see it: the message and the frames of their own script only,
    with positions in their own lines (the runtime's wrapper line taken off)."""
    lines = str(text).splitlines() or [""]
    message: list[str] = []
    frames: list[str] = []
    position: tuple[int, int] | None = None
    for line in lines:
        match = FRAME.match(line)
        if match is None:
            if not frames:
                message.append(line)
            continue
        if match["file"] != script_name:
            continue
        line_no = int(match["line"]) - SCRIPT_LINE_OFFSET
        column = int(match["column"])
        if position is None:
            position = (line_no, column)
        # The script's top level runs inside the runtime's anonymous wrapper, which V8 names "eval".
        name = match["name"]
        where = f"{script_name}:{line_no}:{column}"
        frames.append(f"    at {name} ({where})" if name and name != "eval" else f"    at {where}")
    return {
        "message": "\n".join([*message, *frames]).strip(),
        "line": position[0] if position else None,
        "column": position[1] if position else None,
    }


def syntax_error(found: dict[str, Any], script_name: str) -> dict[str, Any]:
    message = f"SyntaxError: {found['message']}"
    if found.get("top_level_await"):
        message += " (`await` is only valid in async functions on Node.js 12: wrap the script in (async () => { … })())"
    elif found.get("newer"):
        message += " (this syntax is newer than Node.js 12, which runs scripts on IFTTT)"
    where = f"{script_name}:{found['line']}:{found['column']}"
    return {"message": f"{message}\n    at {where}", "line": found["line"], "column": found["column"]}


class _Run:
    """One run's bookkeeping, shared with the watchdog thread."""

    def __init__(self, request: dict[str, Any], limits: dict[str, Any]) -> None:
        self.request = request
        self.limits = limits
        self.started = time.monotonic()
        self.limit_s = request["timeout_ms"] / 1000
        self.deadline = self.started + self.limit_s
        self.host_seconds = 0.0  # time the parent spent on Connect calls: not the engine's
        self.logs: list[dict[str, str]] = []
        self.log_chars = 0
        self.logs_dropped = 0
        self.finished = False

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise JSTimeoutException
        return left

    def keep_logs(self, logs: Any) -> None:
        if not isinstance(logs, list):
            raise RuntimeBroken("console output")
        for entry in logs:
            if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
                raise RuntimeBroken("console output")
            size = len(entry["message"])
            if len(self.logs) >= self.limits["log_lines"] or self.log_chars + size > self.limits["log_chars"]:
                self.logs_dropped += 1
                continue
            self.log_chars += size
            self.logs.append({"level": str(entry.get("level", "log"))[:8], "message": entry["message"]})

    def timed_out_error(self) -> dict[str, Any]:
        return {
            "message": f"The script ran longer than the {self.limit_s:g} s limit and was stopped.",
            "line": None,
            "column": None,
        }

    def done(self, outcome: str, error: dict[str, Any] | None, unsettled: int = 0) -> dict[str, Any]:
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
    error = run.timed_out_error()
    error["message"] += " Console output from its last step was lost."
    _send(stdout, {**run.done("timed_out", error), "exiting": True})
    os._exit(0)


def _state(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, str) or len(raw) > MAX_STATE_CHARS:
        raise RuntimeBroken("state")
    try:
        current = json.loads(raw)
    except ValueError:
        raise RuntimeBroken("state") from None
    if not isinstance(current, dict) or not isinstance(current.get("calls"), list):
        raise RuntimeBroken("state")
    wait = current.get("wait_ms")
    if wait is not None and (not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0):
        raise RuntimeBroken("timers")
    return current


MAX_STATE_CHARS = 16 * 1024 * 1024


# A connection's script runs on every event, unchanged between edits: parse each text once.
_checked: dict[str, Any] = {}
CHECKED_KEPT = 256


def _syntax_check(checker: MiniRacer, script: str, timeout_s: float) -> dict[str, Any] | None:
    """None when `script` is Node.js 12 syntax, else where and why it is not."""
    key = hashlib.sha256(script.encode("utf-8", "surrogatepass")).hexdigest()
    if key not in _checked:
        if len(_checked) >= CHECKED_KEPT:
            _checked.clear()
        _checked[key] = json.loads(str(checker.eval(f"__check({json.dumps(script)})", timeout_sec=timeout_s)))
    return _checked[key]


def _run(
    ctx: MiniRacer, checker: MiniRacer, runtime: Runtime, request: dict[str, Any], stdin: Any, stdout: Any
) -> dict[str, Any]:
    run = _Run(request, runtime.limits)
    watchdog = threading.Timer(run.limit_s + WATCHDOG_GRACE_SECONDS, _watchdog, (run, stdout))
    watchdog.daemon = True
    watchdog.start()
    outcome: str = "succeeded"
    error: dict[str, Any] | None = None
    driver = "__connectionsRuntime"
    setup = request["setup"]
    script_name = runtime.limits["script_name"]

    try:
        found = _syntax_check(checker, setup["script"], run.remaining())
        if found is not None:
            watchdog.cancel()
            run.finished = True
            return run.done("failed", syntax_error(found, script_name))
        _eval(ctx, f"{driver}.start({json.dumps(json.dumps(setup))})", run.remaining())
        while True:
            current = _state(_eval(ctx, f"{driver}.state()", run.remaining()))
            run.keep_logs(current.get("logs"))
            if current["calls"]:
                _send(stdout, {"op": "calls", "calls": current["calls"]})
                waited = time.monotonic()
                line = stdin.readline()
                run.host_seconds += time.monotonic() - waited
                if not line:
                    raise SystemExit(0)
                reply = json.loads(line)
                _eval(ctx, f"{driver}.settle({json.dumps(json.dumps(reply['results']))})", run.remaining())
            elif current.get("wait_ms") is not None:
                pause = float(current["wait_ms"]) / 1000
                left = run.deadline - time.monotonic()
                if pause >= left:
                    # Waiting would only end at the limit with the timer not run: say so now.
                    elapsed = time.monotonic() - run.started
                    outcome = "timed_out"
                    error = {
                        "message": (
                            f"The script was stopped after {elapsed:.2f} s: it was waiting for a timer due in "
                            f"{pause:.2f} s, past the {run.limit_s:g} s limit, so the timer could never run "
                            f"(on IFTTT the script is terminated at {run.limit_s:g} s)."
                        ),
                        "line": None,
                        "column": None,
                    }
                    break
                time.sleep(pause)
                _eval(ctx, f"{driver}.fireTimers()", run.remaining())
            else:
                break
    except JSTimeoutException:
        outcome, error = "timed_out", run.timed_out_error()
    except (JSOOMException, MemoryLimitReached):
        outcome = "memory_exceeded"
        error = {
            "message": f"The script used more than the {request['memory_mb']} MB memory limit and was stopped.",
            "line": None,
            "column": None,
        }
    except (RuntimeBroken, JSEvalException) as exc:
        # The runtime's own calls into the context failed: only a script that replaced what they use does that.
        outcome = "failed"
        error = {
            "message": f"The script replaced parts of the runtime it relies on ({exc}); the run was stopped.",
            "line": None,
            "column": None,
        }

    report: dict[str, Any] = {"logs": [], "logs_dropped": 0, "errors": [], "unsettled": 0}
    # A terminated context may refuse even this; the outcome already says why.
    with contextlib.suppress(Exception):
        report = json.loads(str(ctx.eval(f"{driver}.report()", timeout_sec=1)))
    with contextlib.suppress(RuntimeBroken):
        run.keep_logs(report.get("logs"))
    dropped = report.get("logs_dropped")
    run.logs_dropped += dropped if isinstance(dropped, int) and dropped >= 0 else 0
    errors = report.get("errors")
    if outcome == "succeeded" and isinstance(errors, list) and errors:
        outcome, error = "failed", script_error(str(errors[0]), script_name)
        if len(errors) > 1:
            error["message"] += f"\n(and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    unsettled = report.get("unsettled")
    watchdog.cancel()
    with _send_lock:
        answered = run.finished
        run.finished = True
    if answered:  # the watchdog answered for this run and is ending the process
        threading.Event().wait()
    return run.done(outcome, error, unsettled if isinstance(unsettled, int) else 0)


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    config = json.loads(sys.argv[1])
    memory_mb = int(config["memory_mb"])
    # V8's own heap ceiling sits above the per-context cap, so the cap (a catchable stop) trips first;
    # the ceiling only ends this process for allocations the cap cannot see coming. Flags count only
    # before the first context of the process, so this comes first.
    init_mini_racer(flags=("--single-threaded", f"--max-old-space-size={memory_mb * 3}"))
    runtime = Runtime(Path(config["node_modules"]), config["limits"])
    checker = _new_checker(runtime)
    # A context is made ahead of each run, while the sandbox would otherwise sit idle.
    ctx = _new_context(runtime, memory_mb)
    _send(stdout, {"op": "ready"})
    while True:
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        if request.get("op") != "run":
            continue
        request["memory_mb"] = memory_mb
        result = _run(ctx, checker, runtime, request, stdin, stdout)
        _send(stdout, result)
        ctx.close()
        ctx = _new_context(runtime, memory_mb)


if __name__ == "__main__":
    main()
