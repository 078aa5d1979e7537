"""Connection runtime scripts: run overhead (script start to finish, excluding Connect API time).

    .venv/bin/python bench/scripts.py [--rounds 5] [--runs 60] [--previous f65e537]

Three things are measured in the same run, in interleaved rounds so they see the same machine:
- the floor: the same script evaluated in one long-lived, in-process V8 context (no sandbox process,
  no fresh context, no Promise pumping, no moment.js): the engine's own cost;
- the previous runtime, taken from git at `--previous` (the sandbox before the host-side limits,
  moment.js and the Node 12 syntax check), when that revision is there;
- the runtime now: `script_execute` as the worker calls it.
Both runtimes are answered by a recording handler, so no network time is involved (and the handler's
time is excluded anyway). "back-to-back" starts each run the moment the previous one ends; "paced"
leaves 20 ms between runs, as a worker has between events, so the next context is ready in time.
Each cell is the median of the rounds' medians, with the rounds' range.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iftttsvc.settings")

import django  # noqa: E402

django.setup()

from connections import sandbox as current  # noqa: E402
from connections.runtime.local import Answer, recording_handler  # noqa: E402

SCRIPTS = {
    "one action": 'runAction("sms.send_me_text", {fields: {message: Trigger.ingredients.device_name}});',
    "YouTube → SMS (1 query, 3 actions)": """
const room = Trigger.ingredients.room;
const promise = performQuery("smarthome.list_devices", { fields: {room: room}, limit: 3});
promise.then((response) => {
  response.responseBody.data.forEach(device => {
    runAction("sms.send_me_text", { fields: { message: `${device.device_name} ${device.room}` }});
  });
});
if (Meta.currentUserTime.hour() > 22) console.log("late");
""",
}

ROWS = [{"device_name": f"Device {i}", "room": "Office"} for i in range(3)]
ANSWERS = {"smarthome.list_devices": [Answer(status=200, body={"type": "list", "data": ROWS})]}

# The floor's stand-ins for the globals, so the same source runs in a bare context.
FLOOR_PRELUDE = """
var Trigger = {id: "smarthome.device_switched_on", ingredients: {device_name: "Desk lamp", room: "Office"}};
var Meta = {currentUserTime: {hour: () => 12}};
var runAction = () => Promise.resolve({statusCode: 200, responseBody: {}});
var performQuery = () => Promise.resolve({statusCode: 200, responseBody: {type: "list", data: [
  {device_name: "a", room: "r"}, {device_name: "b", room: "r"}, {device_name: "c", room: "r"}]}});
"""

Runner = Callable[[str], float]


def setup_kwargs(script: str) -> dict[str, Any]:
    return {
        "script": script,
        "trigger_id": "smarthome.device_switched_on",
        "ingredients": {"device_name": "Desk lamp", "room": "Office"},
        "service_user_id": "user-1",
        "feature_name": "feature",
        "user_feature_id": "4da42aa6-3858-4722-9ded-6a7ecdefd91f",
        "configuration": {},
        "now_ms": int(time.time() * 1000),
        "zone": "America/Los_Angeles",
    }


def previous_runtime(revision: str) -> ModuleType | None:
    """The sandbox module as it was at `revision`, importable beside the current one."""
    folder = Path(tempfile.mkdtemp(prefix="previous-runtime-"))
    (folder / "runtime").mkdir()
    for name in ("sandbox.py", "runtime/child.py", "runtime/prelude.js"):
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:connections/{name}"],
            capture_output=True,
            check=False,
        )
        if shown.returncode != 0:
            print(f"(previous runtime at {revision} not available: {shown.stderr.decode().strip()})")
            return None
        (folder / name).write_bytes(shown.stdout)
    spec = importlib.util.spec_from_file_location("previous_sandbox", folder / "sandbox.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def floor_runner() -> tuple[Runner, Callable[[], None]]:
    from py_mini_racer import MiniRacer

    ctx = MiniRacer()
    ctx.eval(FLOOR_PRELUDE)

    def run(script: str) -> float:
        source = f"(async function() {{ {script} }})(); 0"
        started = time.perf_counter()
        ctx.eval(source)
        return (time.perf_counter() - started) * 1000

    return run, ctx.close


def sandbox_runner(module: ModuleType, *, previous: bool) -> Runner:
    handler = recording_handler(ANSWERS)

    def run(script: str) -> float:
        kwargs = setup_kwargs(script)
        if previous:
            kwargs["offset_minutes"] = -480
        result = module.script_execute(setup=module.ScriptSetup(**kwargs), handler=handler)
        if result.outcome != "succeeded":
            raise SystemExit(f"The benchmark script failed: {result.error}")
        return float(result.overhead_ms)

    return run


def measure(runner: Runner, script: str, runs: int, pause_s: float) -> float:
    timings = []
    for _ in range(runs):
        if pause_s:
            time.sleep(pause_s)
        timings.append(runner(script))
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--runs", type=int, default=60, help="runs per measurement per round (default 60)")
    parser.add_argument(
        "--previous", default="f65e537", help="git revision of the previous runtime to compare with (default f65e537)"
    )
    args = parser.parse_args()

    floor, close_floor = floor_runner()
    contenders: list[tuple[str, Runner, float]] = [("floor: bare in-process V8 eval", floor, 0.0)]
    old = previous_runtime(args.previous)
    if old is not None:
        contenders += [
            (f"previous runtime ({args.previous}), back-to-back", sandbox_runner(old, previous=True), 0.0),
            (f"previous runtime ({args.previous}), paced 20 ms", sandbox_runner(old, previous=True), 0.02),
        ]
    contenders += [
        ("runtime now, back-to-back", sandbox_runner(current, previous=False), 0.0),
        ("runtime now, paced 20 ms", sandbox_runner(current, previous=False), 0.02),
    ]
    medians: dict[tuple[str, str], list[float]] = {}
    try:
        for name, script in SCRIPTS.items():
            for _, runner, _ in contenders:
                runner(script)  # starts the sandbox processes, warms V8
            for round_no in range(args.rounds):
                for label, runner, pause in contenders:
                    medians.setdefault((name, label), []).append(measure(runner, script, args.runs, pause))
                print(f"  {name}: round {round_no + 1}/{args.rounds}", file=sys.stderr, flush=True)
    finally:
        close_floor()
        current.sandbox_shutdown()
        if old is not None:
            old.sandbox_shutdown()

    load = os.getloadavg()[0]
    print(f"\nScript run overhead, ms: median of {args.rounds} rounds' medians ({args.runs} runs each), (min–max)")
    print(f"Load average at the end: {load:.1f}\n")
    print("| script | runtime | overhead p50 (min–max) | ÷ floor |")
    print("|---|---|---:|---:|")
    for name in SCRIPTS:
        floor_p50 = statistics.median(medians[(name, contenders[0][0])])
        for label, _, _ in contenders:
            values = medians[(name, label)]
            p50 = statistics.median(values)
            print(f"| {name} | {label} | {p50:.2f} ({min(values):.2f}–{max(values):.2f}) | {p50 / floor_p50:.0f}× |")
    print("\nTarget: runtime now, paced p50 ≤ 5 ms.")


if __name__ == "__main__":
    main()
